# warren profile "claude-code": Anthropic's native Claude Code binary, from
# its npm registry tarball pinned by hash. Builds with no inputs: the tarball
# is a fixed-output download (`make profiles` fetches it once; after that the
# build is offline) unpacked with the host's tar. The binary carries its own
# ripgrep; git, curl and the shell come from the read-only host system.
{
  description = "warren profile: Claude Code (native binary) for agents";

  outputs = { self }:
    let
      system = "x86_64-linux";
      version = "2.1.330";
      tarball = import <nix/fetchurl.nix> {
        url = "https://registry.npmjs.org/@anthropic-ai/claude-code-linux-x64/-/claude-code-linux-x64-${version}.tgz";
        hash = "sha512-9Gn+V7DtJ8M1nztP9CeDVl9g3RtrepI7rOFTyPRRnZe8D6zebIHKmC7OvBauucuAP0X0k85SDN/LPVZyjsGezQ==";
      };
    in {
      packages.${system}.default = derivation {
        name = "warren-profile-claude-code-${version}";
        inherit system version tarball;
        builder = "/bin/sh";
        declaration = ./flake.nix;
        args = [ "-c" ''
          set -e
          PATH=/usr/bin:/bin
          mkdir -p $out/bin $out/libexec/claude-code $out/share/warren
          tar -xzf $tarball -C $out/libexec/claude-code --strip-components=1 --no-same-owner
          chmod 555 $out/libexec/claude-code/claude
          ln -s ../libexec/claude-code/claude $out/bin/claude
          cp $declaration $out/share/warren/flake.nix
          cat > $out/share/warren/profile.ini <<INI
          [env]
          WARREN_PROFILE = claude-code
          ; the binary is pinned by the profile: no self-update, and no
          ; telemetry, error reporting or release checks to hosts an
          ; allowlist refuses
          DISABLE_AUTOUPDATER = 1
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = 1
          INI
        '' ];
      };
    };
}
