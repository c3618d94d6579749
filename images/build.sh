#!/usr/bin/env bash
# Builds the braindrill runtime image from Debian packages, locally; nothing is ever pulled.
#
#   images/build.sh            build if missing, then print the tag (the only line on stdout)
#   images/build.sh --tag      print the tag this checkout needs, build nothing
#   images/build.sh --force    rebuild the base (debootstrap) and the runtime image
#
# Two images:
#   braindrill-base:<h1>     debootstrap --variant=minbase of images/runtime/packages.txt, imported
#                            with `docker import`; h1 hashes packages.txt and the base recipe below.
#   braindrill-runtime:<h2>  the base + the supervisor (images/runtime/Dockerfile, `docker build
#                            --network none`); h2 hashes every file of images/runtime/, so editing
#                            supervisor.c rebuilds only this layer. The engine computes h2 the same
#                            way (src/sandbox/image.ts) and only ever uses that local tag.
#
# Needs docker.io and debootstrap, and root for the debootstrap step. Environment:
#   BRAINDRILL_DEBIAN_MIRROR  Debian mirror (default http://deb.debian.org/debian)
#   BRAINDRILL_DEB_CACHE      .deb cache kept between builds (default /var/cache/braindrill/debs)
#   BRAINDRILL_BUILD_DIR      where the temporary rootfs goes (default /var/tmp; ~2.5 GB)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUITE=bookworm
MIRROR=${BRAINDRILL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEB_CACHE=${BRAINDRILL_DEB_CACHE:-/var/cache/braindrill/debs}
BUILD_DIR=${BRAINDRILL_BUILD_DIR:-/var/tmp}
BASE_REPOSITORY=braindrill-base
RUNTIME_REPOSITORY=braindrill-runtime

say() { printf 'images/build.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

mode=build
force=0
for arg in "$@"; do
	case $arg in
	--tag) mode=tag ;;
	--force) force=1 ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option '$arg' (see --help)" ;;
	esac
done

cd "$ROOT"

# --- tags -------------------------------------------------------------------------------------

# h2: exactly this definition; src/sandbox/image.ts computes the same over readdir(), so the
# recipe directory must stay flat and free of dot-files.
runtime_hash() {
	# shellcheck disable=SC2046,SC2002,SC2012 # the prescribed definition, verbatim
	cat $(cd images/runtime && LC_ALL=C ls | sed 's|^|images/runtime/|') | sha256sum | cut -c1-12
}

for entry in images/runtime/* images/runtime/.[!.]*; do
	[ -e "$entry" ] || continue
	case ${entry##*/} in .*) die "$entry: no dot-files in images/runtime/ (the engine would hash it, ls does not)" ;; esac
	[ -f "$entry" ] || die "$entry: images/runtime/ must hold plain files only"
done

# Package names from packages.txt: comments and blank lines dropped, joined with commas.
packages() {
	sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' images/runtime/packages.txt | paste -sd, -
}

# The base rootfs recipe. Its own text is part of h1, so changing it makes a new base tag.
make_rootfs() {
	local rootfs=$1
	debootstrap --variant=minbase --include="$(packages)" --cache-dir="$DEB_CACHE" \
		"$SUITE" "$rootfs" "$MIRROR"
	# Nothing in a sandbox needs apt's caches, documentation or translations.
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
		"$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
		"$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log \
		"$rootfs"/tmp/* "$rootfs"/root/.cache
}

base_hash() {
	{ cat images/runtime/packages.txt; echo "suite=$SUITE variant=minbase"; declare -f make_rootfs; } | sha256sum | cut -c1-12
}

RUNTIME_TAG=$RUNTIME_REPOSITORY:$(runtime_hash)
BASE_TAG=$BASE_REPOSITORY:$(base_hash)

if [ "$mode" = tag ]; then
	echo "$RUNTIME_TAG"
	exit 0
fi

# --- preconditions ----------------------------------------------------------------------------

command -v docker >/dev/null || die "docker not found: install it (apt-get install docker.io)"
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

if [ "$force" = 0 ] && image_exists "$RUNTIME_TAG"; then
	echo "$RUNTIME_TAG"
	exit 0
fi
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
	die "cannot reach the Docker daemon (is dockerd running, and may this user use /var/run/docker.sock?)"

# One build at a time on this host; a concurrent run waits, then finds the image built.
exec 9>"${TMPDIR:-/tmp}/braindrill-images.lock"
if ! flock -n 9; then
	say "another build is running; waiting for it"
	flock 9
fi
if [ "$force" = 0 ] && image_exists "$RUNTIME_TAG"; then
	echo "$RUNTIME_TAG"
	exit 0
fi

cleanup_dirs=()
cleanup() {
	local dir mounts
	for dir in "${cleanup_dirs[@]}"; do
		[ -d "$dir" ] || continue
		# An interrupted debootstrap can leave /proc or /sys mounted inside the target.
		mounts=$(awk -v d="$dir/" 'index($2 "/", d) == 1 { print $2 }' /proc/mounts | sort -r)
		[ -z "$mounts" ] || echo "$mounts" | xargs -r umount -l 2>/dev/null || true
		rm -rf --one-file-system "$dir"
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=$SECONDS

# --- base image: debootstrap + docker import --------------------------------------------------

if [ "$force" = 1 ] || ! image_exists "$BASE_TAG"; then
	[ "$(id -u)" = 0 ] || die "building $BASE_TAG runs debootstrap, which needs root (try sudo)"
	command -v debootstrap >/dev/null || die "debootstrap not found: install it (apt-get install debootstrap)"
	mkdir -p "$DEB_CACHE" "$BUILD_DIR"
	DEB_CACHE=$(cd "$DEB_CACHE" && pwd) # debootstrap wants an absolute path
	rootfs=$(mktemp -d "$BUILD_DIR/braindrill-rootfs.XXXXXX")
	cleanup_dirs+=("$rootfs")
	log=$BUILD_DIR/braindrill-debootstrap.log
	say "building $BASE_TAG: debootstrap $SUITE with $(packages | tr , ' ')"
	say "  (a few minutes; .debs are cached in $DEB_CACHE; log: $log)"
	t=$SECONDS
	if ! make_rootfs "$rootfs" >"$log" 2>&1; then
		tail -n 25 "$log" >&2
		die "debootstrap failed (full log: $log; is $MIRROR reachable?)"
	fi
	say "  debootstrap done in $((SECONDS - t)) s ($(du -sh "$rootfs" | cut -f1)); importing into docker"
	t=$SECONDS
	tar --numeric-owner -C "$rootfs" -c . |
		docker import --message "braindrill base: debootstrap $SUITE" \
			--change "LABEL braindrill.base=$BASE_TAG" - "$BASE_TAG" >/dev/null
	say "  imported $BASE_TAG in $((SECONDS - t)) s"
	rm -rf --one-file-system "$rootfs"
else
	say "reusing $BASE_TAG"
fi

# --- runtime image: base + supervisor ---------------------------------------------------------

candidate=$RUNTIME_REPOSITORY:candidate-$(runtime_hash)
say "building $RUNTIME_TAG from $BASE_TAG (docker build --network none)"
build_args=(--network none --build-arg "BASE=$BASE_TAG" --label "braindrill.base=$BASE_TAG"
	--label "braindrill.runtime=$RUNTIME_TAG" -t "$candidate")
[ "$force" = 0 ] || build_args+=(--no-cache)
# The classic builder uses local images only (newer clients print a deprecation notice for it).
DOCKER_BUILDKIT=0 docker build "${build_args[@]}" images/runtime >&2 ||
	die "docker build of the runtime image failed"

# --- smoke test: one request through the supervisor, with the engine's hardening -------------

# shellcheck disable=SC2059 # the formats are generated octal escapes
{
u32() { printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)))"; }
record() { printf "$(printf '\\%03o' "$1")"; u32 "${#2}"; printf '%s' "$2"; }
}
smoke_request() {
	printf 'BDX1'
	record 1 "braindrill-smoke"
	record 16 main.py
	record 17 'print("drill my brain")'
	record 48 python3
	record 48 main.py
	printf '\061'; u32 4; u32 10000
	printf '\140'; u32 4; u32 65536
	printf '\141'; u32 4; u32 1048576
	record 0 ''
}
say "smoke test: python hello world through bd-supervisor"
response=$(LC_ALL=C smoke_request |
	docker run --rm -i --user 65534:65534 --network none --read-only \
		--tmpfs /tmp:rw,exec,nosuid,nodev,mode=1777,size=16m --memory 64m --memory-swap 64m \
		--pids-limit 64 --cpus 1 --cap-drop ALL --security-opt no-new-privileges \
		--ulimit nofile=64:64 --log-driver none --ipc none "$candidate" | LC_ALL=C tr -d '\000' || true)
if ! grep -q 'drill my brain' <<<"$response" || ! grep -q '"error":null,"compile":null,"run":{"exit_code":0' <<<"$response"; then
	docker rmi "$candidate" >/dev/null 2>&1 || true
	die "smoke test failed; supervisor answered: $(LC_ALL=C tr -c '[:print:]' '.' <<<"$response" | head -c 600)"
fi

# --- config/languages.json "version" fields against the image (a warning, not a failure) --------

# Debian point releases move versions; the API reports what the config says, so keep it true.
# shellcheck disable=SC2016 # Python source, expanded by nobody
version_probe='
import json, re, subprocess, sys
probes = {
    "python": ["python3", "-c", "import platform; print(platform.python_version())"],
    "javascript": ["node", "-p", "process.versions.node"],
    "typescript": ["tsc", "--version"],
    "java": ["javac", "-version"],
    "ruby": ["ruby", "-e", "print RUBY_VERSION"],
    "perl": ["perl", "-e", "printf q(%vd), $^V"],
    "php": ["php", "-r", "echo PHP_VERSION;"],
    "c": ["gcc", "-dumpfullversion"],
    "cpp": ["g++", "-dumpfullversion"],
    "go": ["go", "version"],
    "rust": ["rustc", "--version"],
    "bash": ["bash", "-c", "echo ${BASH_VERSINFO[0]}.${BASH_VERSINFO[1]}.${BASH_VERSINFO[2]}"],
}
for lang in json.load(sys.stdin):
    name, want = lang["id"], lang["version"]
    if name not in probes:
        print(f"  {name}: no version probe in images/build.sh, not checked")
        continue
    out = subprocess.run(probes[name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    found = re.search(r"\d+(?:\.\d+)+", out)
    found = found.group(0) if found else "?"
    if found != want:
        print(f"  WARNING {name}: config/languages.json says {want}, the image has {found}")
'
if [ -f config/languages.json ]; then
	mismatches=$(docker run --rm -i --network none --user 65534:65534 --read-only --tmpfs /tmp -e HOME=/tmp \
		--entrypoint python3 "$candidate" -c "$version_probe" <config/languages.json 2>&1 || true)
	if [ -n "$mismatches" ]; then
		say "language versions:"
		echo "$mismatches" >&2
	else
		say "config/languages.json versions match the image"
	fi
fi

docker tag "$candidate" "$RUNTIME_TAG"
docker rmi "$candidate" >/dev/null
say "built $RUNTIME_TAG in $((SECONDS - started)) s ($(docker image inspect -f '{{.Size}}' "$RUNTIME_TAG" | awk '{printf "%.1f GB", $1 / 1e9}'))"

older=$(docker images --format '{{.Repository}}:{{.Tag}}' "$RUNTIME_REPOSITORY" | grep -v -x -F "$RUNTIME_TAG" || true)
if [ -n "$older" ]; then
	say "older runtime images kept (other nodes may still use them; docker rmi when none does):"
	while read -r tag; do printf '  %s\n' "$tag" >&2; done <<<"$older"
fi
echo "$RUNTIME_TAG"
