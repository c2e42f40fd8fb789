# warren profile "claude-code": Anthropic's Claude Code CLI with the tools
# it shells out to. Claude Code is unfree (allowUnfree below). Its ripgrep
# is mapped to a fixed path and USE_BUILTIN_RIPGREP=0 makes the CLI use the
# system one, so no download happens at cold start. Needs the public binary
# cache; reviewed, not built on warren's CI.
{
  description = "warren profile: claude-code, nodejs, ripgrep, git";
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = import nixpkgs { inherit system; config.allowUnfree = true; };
      ini = pkgs.writeTextDir "share/warren/profile.ini" ''
        [env]
        WARREN_PROFILE = claude-code
        USE_BUILTIN_RIPGREP = 0
        DISABLE_AUTOUPDATER = 1
        [paths]
        /opt/warren/bin/rg = ${pkgs.ripgrep}/bin/rg
      '';
    in {
      packages.${system}.default = pkgs.buildEnv {
        name = "warren-profile-claude-code";
        paths = with pkgs; [ claude-code nodejs_20 ripgrep gitMinimal coreutils bashInteractive ini ];
      };
    };
}
