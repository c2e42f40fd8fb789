# warren profile "node": Node.js for JavaScript agents and tools. Needs the
# public binary cache; reviewed, not built on warren's CI.
{
  description = "warren profile: nodejs, git, ripgrep";
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      ini = pkgs.writeTextDir "share/warren/profile.ini" ''
        [env]
        WARREN_PROFILE = node
        NPM_CONFIG_PREFIX = /tmp/npm-global
      '';
    in {
      packages.${system}.default = pkgs.buildEnv {
        name = "warren-profile-node";
        paths = with pkgs; [ nodejs_20 gitMinimal ripgrep coreutils bashInteractive ini ];
      };
    };
}
