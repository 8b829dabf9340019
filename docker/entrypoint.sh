#!/bin/sh
# Container entrypoint: prepare $MS_DATA_DIR, then run the command (default: python app.py) as PUID:PGID.
#
# Started as root (the default), it copies baked model weights that /data/models lacks, gives $MS_DATA_DIR to
# PUID:PGID (default 1000:1000) and drops root with setpriv before exec. Started as a non-root user already
# (docker run --user, rootless Docker) it just execs. The library is never touched: it is mounted read-only.
set -eu

data_dir="${MS_DATA_DIR:-/data}"
baked_models="${MS_BAKED_MODELS:-/opt/materialsearch/models}"
uid="${PUID:-1000}"
gid="${PGID:-1000}"

case "$uid$gid" in
    *[!0-9]*|'') echo "entrypoint: PUID and PGID must be numbers, got PUID=$uid PGID=$gid" >&2; exit 2 ;;
esac

copy_baked_models() {
    # cp only what is missing: weights the user copied or downloaded before are kept as they are.
    [ -d "$baked_models" ] || return 0
    for source in "$baked_models"/*; do
        [ -f "$source" ] || continue
        mkdir -p "$data_dir/models"
        target="$data_dir/models/$(basename "$source")"
        if [ ! -e "$target" ]; then
            echo "entrypoint: copying baked weights $(basename "$source") into $data_dir/models" >&2
            cp "$source" "$target.tmp" && mv "$target.tmp" "$target"
        fi
    done
}

if [ "$(id -u)" != "0" ]; then
    copy_baked_models
    exec "$@"
fi

mkdir -p "$data_dir"
copy_baked_models
if [ "$uid" = "0" ]; then
    echo "entrypoint: warning: PUID=0 runs materialsearch as root; set PUID/PGID to your NAS user's ids" >&2
    exec "$@"
fi
# chown -R only when the owner is wrong (first start, or PUID/PGID changed): it is slow on a big thumbnail cache.
if [ "$(stat -c %u "$data_dir")" != "$uid" ] || [ "$(stat -c %g "$data_dir")" != "$gid" ]; then
    echo "entrypoint: giving $data_dir to $uid:$gid" >&2
    chown -R "$uid:$gid" "$data_dir"
elif [ -d "$data_dir/models" ]; then
    chown -R "$uid:$gid" "$data_dir/models"  # freshly copied weights
fi
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
