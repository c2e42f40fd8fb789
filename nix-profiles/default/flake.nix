# warren profile "default": a shell toolbox. Needs the public binary cache
# (or time to build from source); reviewed, not built on warren's CI.
{
  description = "warren profile: bash, coreutils, git, ripgrep, curl";
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      ini = pkgs.writeTextDir "share/warren/profile.ini" ''
        [env]
        WARREN_PROFILE = default
      '';
    in {
      packages.${system}.default = pkgs.buildEnv {
        name = "warren-profile-default";
        paths = with pkgs; [ bashInteractive coreutils gitMinimal ripgrep curl ini ];
      };
    };
}
