# TEST FIXTURE profile: builds with no inputs and no network, so the tests
# and `make demo` exercise warren's Nix path for real on machines without a
# binary cache. Tools are shell scripts plus the host's static busybox
# (Debian busybox-static), copied into the store at build time.
{
  description = "warren offline fixture profile (tests and demo)";

  outputs = { self }:
    let
      system = "x86_64-linux";
      greeting = "hello from the offline profile";
    in {
      packages.${system}.default = derivation {
        name = "warren-profile-offline";
        inherit system greeting;
        builder = "/bin/sh";
        declaration = ./flake.nix;
        args = [ "-c" ''
          set -e
          PATH=/usr/bin:/bin
          mkdir -p $out/bin $out/share/warren
          printf '#!/bin/sh\necho "%s"\n' "$greeting" > $out/bin/warren-hello
          chmod 555 $out/bin/warren-hello
          if [ -x /bin/busybox ]; then
            cp /bin/busybox $out/bin/busybox
            for a in ash vi wget; do ln -s busybox $out/bin/$a; done
          fi
          cp $declaration $out/share/warren/flake.nix
          cat > $out/share/warren/profile.ini <<INI
          [env]
          WARREN_PROFILE = offline
          WARREN_GREETING = $greeting
          [paths]
          /opt/warren-offline/bin/hello = $out/bin/warren-hello
          INI
        '' ];
      };
    };
}
