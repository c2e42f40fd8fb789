# warren profile "python": Python 3 with pip and venv. Needs the public
# binary cache; reviewed, not built on warren's CI.
{
  description = "warren profile: python3, git, ripgrep";
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      python = pkgs.python312.withPackages (ps: [ ps.pip ps.virtualenv ]);
      ini = pkgs.writeTextDir "share/warren/profile.ini" ''
        [env]
        WARREN_PROFILE = python
        PYTHONDONTWRITEBYTECODE = 1
      '';
    in {
      packages.${system}.default = pkgs.buildEnv {
        name = "warren-profile-python";
        paths = [ python pkgs.gitMinimal pkgs.ripgrep pkgs.coreutils pkgs.bashInteractive ini ];
      };
    };
}
