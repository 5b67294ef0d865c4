#!/bin/sh
# Build dwfs_VERSION_ARCH.deb on a Debian machine: packaging/debian/build.sh [OUTDIR]
#
# The package is self-contained: a virtual environment in /opt/dwfs holding
# dwfs (built from this tree, native extensions included) and its dependencies
# from PyPI, since Debian 12's trio and cryptography are older than dwfs needs.
# It adds /usr/bin/dwfsctl, /sbin/mount.dwfs (so fstab and mount -t dwfs work),
# the systemd unit dwfs@.service, /etc/dwfs for its configuration files, and the
# docs with every command's --help in /usr/share/doc/dwfs. Needs python3.11,
# python3.11-venv, a C compiler and libfuse3-dev (make setup installs them).
set -eu

here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$here/dist}
python=${PYTHON:-python3.11}
version=$(sed -n 's/^version = //p' "$here/setup.cfg")
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT INT TERM
root=$stage/root
venv=$root/opt/dwfs

# Build from a copy, so the tree gets no build/ or egg-info of pip's.
mkdir -p "$stage/src"
(cd "$here" && tar --exclude=./.venv --exclude=./.git --exclude=./build --exclude=./dist \
    --exclude='*.so' --exclude=./.dwfs-demo --exclude=./mnt -cf - .) | tar -C "$stage/src" -xf -

"$python" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "$stage/src"

# The environment was made under $root: point it at /opt/dwfs, where it will live.
for script in "$venv"/bin/*; do
    if [ -f "$script" ] && [ ! -L "$script" ] && head -c 2 "$script" | grep -q '#!'; then
        sed -i "1s|^#!$venv/|#!/opt/dwfs/|" "$script"
    fi
done
sed -i "s|$venv|/opt/dwfs|g" "$venv"/bin/activate* "$venv/pyvenv.cfg"

doc=$root/usr/share/doc/dwfs
mkdir -p "$root/usr/bin" "$root/sbin" "$root/lib/systemd/system" "$root/etc/dwfs" "$doc" \
    "$root/DEBIAN"
{
    "$venv/bin/python" -m dwfs.cli.main --help
    for command in $("$venv/bin/python" -c 'from dwfs.cli.main import COMMANDS
for c in COMMANDS: print(c.__name__.rsplit(".", 1)[1].removeprefix("cmd_"))'); do
        printf '\n\n'
        "$venv/bin/python" -m dwfs.cli.main "$command" --help
    done
} > "$doc/dwfsctl.txt"
find "$venv" -name __pycache__ -prune -exec rm -rf {} +
chmod 0700 "$root/etc/dwfs"
ln -s /opt/dwfs/bin/dwfsctl "$root/usr/bin/dwfsctl"
install -m 0755 "$here/mount_helpers/mount.dwfs" "$root/sbin/mount.dwfs"
install -m 0644 "$here/packaging/systemd/dwfs@.service" "$root/lib/systemd/system/"
install -m 0644 "$here/README.md" "$here"/docs/*.md "$doc/"

size=$(du -sk "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: dwfs
Version: $version
Architecture: $arch
Maintainer: dwfs developers <dwfs@localhost>
Installed-Size: $size
Depends: python3.11, fuse3, libfuse3-3
Section: admin
Priority: optional
Homepage: https://github.com/dwfs/dwfs
Description: encrypted, deduplicated, RAID-protected filesystem
 dwfs stores files in an encrypted, content-addressed, erasure-coded block
 store over several directories (one per disk), with snapshots and an
 optional remote tier, and mounts it through FUSE. dwfsctl creates, mounts,
 inspects, repairs, snapshots and tiers pools; mount.dwfs lets fstab mount
 them; dwfs@.service runs one as a service.
CONTROL
cat > "$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
POSTINST
chmod 0755 "$root/DEBIAN/postinst"
mkdir -p "$out"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/dwfs_${version}_${arch}.deb" >/dev/null
echo "$out/dwfs_${version}_${arch}.deb"
