#!/bin/bash
# make dist's packages: the .deb and the RPM each install into a scratch root (dpkg --root,
# rpm --root --nodeps), and from there: `lifeboat --version` is the workspace's version, the
# unit files and man pages are where the package lists them, systemd-analyze (current
# systemd) verifies the installed units with their Documentation= man pages found, `lifeboat
# help backup` and the installed man page list the same options, and the RPM is one that
# CentOS 7's rpm 4.11 reads (xz payload, SHA-256 file digests).
# shellcheck source=tests/root/lib.bash
. "$(dirname "$0")/lib.bash" packages
for tool in rpm rpmbuild dpkg dpkg-deb systemd-analyze man; do
  command -v "$tool" >/dev/null || fail "$tool is missing (make setup installs it)"
done
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$version" ] || fail "no version in Cargo.toml"
note "make dist (dist/build.sh) from the release binaries"
bash dist/build.sh "$(dirname "$LIFEBOAT")" "$W/out" >"$W/built"
deb=$W/out/lifeboat_${version}-1_amd64.deb
rpm=$W/out/lifeboat-${version}-1.x86_64.rpm
[ -f "$deb" ] && [ -f "$rpm" ] || fail "packages missing: $(ls "$W/out")"

# check_root ROOT LISTING: what every installed package must give.
check_root() {
  local root=$1 listing=$2 u
  "$root/usr/sbin/lifeboat" --version | grep -qx "lifeboat $version" ||
    fail "$root: lifeboat --version says '$("$root/usr/sbin/lifeboat" --version)', not $version"
  for u in lifeboat-backup.service lifeboat-backup.timer lifeboat-verify.service lifeboat-verify.timer \
    lifeboat-serve.service \
    lifeboat.8.gz lifeboat-backup.8.gz lifeboat-status.8.gz lifeboat.toml.example lifeboat-init \
    bash-completion/completions/lifeboat; do
    grep -q "/$u\$" "$listing" || fail "the package does not list $u: $(cat "$listing")"
  done
  while read -r f; do
    [ -e "$root$f" ] || fail "the package lists $f but it is not in $root"
  done < <(grep '^/' "$listing" | grep -v '/$')
  cmp "$root/usr/lib/systemd/system/lifeboat-backup.service" dist/systemd/lifeboat-backup.service ||
    fail "the installed unit differs from dist/systemd"
  # The units as current systemd reads them; Documentation=man:... looked up in the package's
  # man pages. Unit names need the .service beside the .timer: verify the installed directory.
  MANPATH=$root/usr/share/man systemd-analyze verify \
    "$root"/usr/lib/systemd/system/lifeboat-{backup,verify}.{timer,service} >"$W/analyze" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$W/analyze")"
  [ ! -s "$W/analyze" ] || fail "systemd-analyze verify warns: $(cat "$W/analyze")"
  # The serve unit runs /usr/sbin/lifeboat itself, which is in the scratch root, not here:
  # that is the only thing systemd-analyze may say of it.
  MANPATH=$root/usr/share/man systemd-analyze verify "$root/usr/lib/systemd/system/lifeboat-serve.service" \
    >"$W/analyze" 2>&1 || true
  if grep -v "/usr/sbin/lifeboat is not executable" "$W/analyze" | grep -q .; then
    fail "systemd-analyze verify lifeboat-serve.service: $(cat "$W/analyze")"
  fi
  # `help backup` and the installed man page name the same long options.
  "$root/usr/sbin/lifeboat" help backup | grep -o -- '--[a-z][a-z-]*' | sort -u >"$W/help.opts"
  MANWIDTH=200 man -l "$root/usr/share/man/man8/lifeboat-backup.8.gz" 2>/dev/null >"$W/man.txt"
  grep -q '^EXIT STATUS' "$W/man.txt" || fail "no EXIT STATUS in lifeboat-backup(8)"
  # The options, not the exit status section every page ends with.
  sed '/^EXIT STATUS/,$d' "$W/man.txt" | grep -o -- '--[a-z][a-z-]*' | sort -u >"$W/man.opts"
  diff "$W/help.opts" "$W/man.opts" || fail "lifeboat help backup and lifeboat-backup(8) differ"
  grep -qx -- --keep "$W/man.opts" || fail "no --keep in the man page: $(cat "$W/man.opts")"
}

note "the .deb into a scratch root"
D=$W/deb-root
mkdir -p "$D/var/lib/dpkg/updates" "$D/var/lib/dpkg/info"
touch "$D/var/lib/dpkg/status"
dpkg --root="$D" --force-script-chrootless -i "$deb" >"$W/dpkg.log" 2>&1 || fail "dpkg -i: $(cat "$W/dpkg.log")"
dpkg --root="$D" -L lifeboat >"$W/deb.list"
dpkg --root="$D" -s lifeboat | grep -qx "Version: ${version}-1" || fail "dpkg -s: $(dpkg --root="$D" -s lifeboat)"
check_root "$D" "$W/deb.list"

note "the RPM into a scratch root"
P=$W/rpm-root
mkdir -p "$P"
rpm -qp --qf '%{PAYLOADCOMPRESSOR} %{FILEDIGESTALGO}\n' "$rpm" 2>/dev/null | grep -qx "xz 8" ||
  fail "payload/digest not readable by rpm 4.11: $(rpm -qp --qf '%{PAYLOADCOMPRESSOR} %{FILEDIGESTALGO}' "$rpm")"
rpm -qp --requires "$rpm" 2>/dev/null | grep -v '^rpmlib(' >"$W/requires" || true
[ ! -s "$W/requires" ] || fail "the RPM requires more than rpmlib: $(cat "$W/requires")"
rpm --root "$P" -i --nodeps "$rpm" >"$W/rpm.log" 2>&1 || fail "rpm -i: $(cat "$W/rpm.log")"
rpm --root "$P" -ql lifeboat >"$W/rpm.list"
rpm --root "$P" -q lifeboat | grep -qx "lifeboat-${version}-1.x86_64" || fail "rpm -q: $(rpm --root "$P" -q lifeboat)"
check_root "$P" "$W/rpm.list"
echo "60-packages: ok"
