#!/usr/bin/env bash
# bench/crowdsec-setup.sh DIR — make Debian's crowdsec (bookworm: 1.4.6) usable for a log
# replay, unattended and without network access to CrowdSec's Central API:
#
#   1. install the package with apt-get if `crowdsec`/`cscli` are missing (needs root);
#   2. make sure no crowdsec service is left running or enabled by the package;
#   3. write a private replay configuration under DIR (nothing in /etc is changed):
#        DIR/config.yaml                  LAPI on 127.0.0.1:<free port>, no online_client
#                                         (Central API), prometheus off, log to stdout,
#                                         own db_path and data_dir
#        DIR/data/                        the package's data files + http_path_traversal.txt
#        DIR/local_api_credentials.yaml   a machine registered in DIR/base.db
#        DIR/base.db                      empty DB with that machine: copy it to db_path
#                                         before each replay for a fresh DB
#
# Prints the path of DIR/config.yaml on stdout; exits non-zero (reason on stderr) if
# crowdsec cannot be installed or configured. Used by bench/entrance.sh; can be run alone.
# Replay afterwards:  crowdsec -c DIR/config.yaml -dsn file:///path/log -type nginx -no-capi
set -euo pipefail
dir=${1:?usage: crowdsec-setup.sh DIR}
export DEBIAN_FRONTEND=noninteractive

say() { echo "crowdsec-setup: $*" >&2; }

# Stop and disable the unit the package installs and enables, so the bench leaves no
# crowdsec daemon behind. Without a running systemd (containers) nothing was started and
# `systemctl disable` just removes the enablement symlink.
quiet_service() {
  if [ -d /run/systemd/system ]; then
    systemctl disable --now crowdsec.service >/dev/null 2>&1 || true
  elif command -v systemctl >/dev/null 2>&1; then
    systemctl disable crowdsec.service >/dev/null 2>&1 || true
  fi
}

pkg_status() { dpkg-query -W -f='${Status}' crowdsec 2>/dev/null || true; }

install_crowdsec() {
  if [ "$(id -u)" != 0 ]; then
    say "crowdsec is not installed and we are not root"
    return 1
  fi
  local capi=/etc/crowdsec/online_api_credentials.yaml made_etc=0 made_policy=0
  # Offline workaround. The postinst runs `cscli capi register` (a network call to
  # api.crowdsec.net) whenever this file is empty; offline that fails and leaves the
  # package half-configured. A non-empty file is the package's documented way to skip the
  # registration (postinst: "the user has created a file in advance to disable CAPI
  # registration"), and postrm keeps it on purge as an admin file.
  if [ ! -s "$capi" ]; then
    [ -d /etc/crowdsec ] || made_etc=1
    mkdir -p /etc/crowdsec
    echo "# no Central API: written by mamori bench/crowdsec-setup.sh (offline install)" > "$capi"
  fi
  # Keep the package from starting its daemon during the install (invoke-rc.d and
  # deb-systemd-invoke honour policy-rc.d); removed again below if we created it.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  say "installing the Debian package crowdsec"
  apt-get install -y -q crowdsec >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q crowdsec >/dev/null 2>&1; } || rc=$?
  if [ "$(pkg_status)" != "install ok installed" ] && dpkg -s crowdsec >/dev/null 2>&1; then
    # Unpacked but its postinst failed at `cscli capi register` (an earlier install
    # without the file above): the research workaround, comment into the file, configure
    # again. The postinst then also sets up the offline hub it skipped.
    echo "# no Central API: written by mamori bench/crowdsec-setup.sh (offline install)" > "$capi"
    dpkg --configure crowdsec >/dev/null 2>&1 && rc=0
  fi
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  if [ "$rc" != 0 ] || [ "$(pkg_status)" != "install ok installed" ]; then
    say "apt-get install crowdsec failed (rc $rc)"
    if [ "$made_etc" = 1 ] && ! dpkg -s crowdsec >/dev/null 2>&1; then
      rm -rf /etc/crowdsec
    fi
    return 1
  fi
  quiet_service
}

if [ "$(pkg_status)" != "install ok installed" ] || ! command -v cscli >/dev/null 2>&1; then
  install_crowdsec
fi
quiet_service

ver=$(crowdsec -version 2>&1 | sed -n 's/.*version: *//p' | head -1)
say "crowdsec ${ver:-(unknown version)}"

# A free TCP port on loopback for this replay's local API.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

mkdir -p "$dir/data"
# Data files the enabled scenarios/parsers read (the postinst copies the same files into
# /var/lib/crowdsec/data; we use our own data_dir so the fix below touches nothing in /var).
cp /usr/share/crowdsec/data/* "$dir/data/"
# Added because Debian's package lacks it (Debian crowdsec 1.4.6-6~deb12u1): the shipped
# scenario crowdsecurity/http-path-traversal-probing reads File('http_path_traversal.txt')
# (dest_file of upstream's sec-lists web/path_traversal.txt), but the package ships that
# list only under its older name path_traversal.txt. Without the file every HTTP event
# logs a ~15 KB "not found in expr library" error (replay crawls at ~230 lines/s) and the
# scenario can never fire. The content is the package's own path_traversal.txt.
if [ ! -e "$dir/data/http_path_traversal.txt" ]; then
  cp /usr/share/crowdsec/data/path_traversal.txt "$dir/data/http_path_traversal.txt"
fi
: > "$dir/acquis.yaml"   # replays use -dsn; the service's acquis.yaml is not read

cat > "$dir/config.yaml" <<EOF
# Private replay config written by mamori bench/crowdsec-setup.sh. Scenarios, parsers and
# patterns are the package's (config_dir /etc/crowdsec, offline hub), everything written
# (DB, data, credentials, logs) stays in this directory.
common:
  daemonize: false
  log_media: stdout
  log_level: info
  working_dir: .
config_paths:
  config_dir: /etc/crowdsec/
  data_dir: $dir/data/
  simulation_path: /etc/crowdsec/simulation.yaml
  hub_dir: /var/lib/crowdsec/hub/
  index_path: /var/lib/crowdsec/hub/.index.json
  notification_dir: /etc/crowdsec/notifications/
  plugin_dir: /usr/lib/crowdsec/plugins/
crowdsec_service:
  acquisition_path: $dir/acquis.yaml
  parser_routines: 1
cscli:
  output: human
  color: false
db_config:
  log_level: info
  type: sqlite
  db_path: $dir/crowdsec.db
  use_wal: false
  flush:
    max_items: 5000
    max_age: 7d
plugin_config:
  user: nobody
  group: nogroup
api:
  client:
    insecure_skip_verify: false
    credentials_path: $dir/local_api_credentials.yaml
  server:
    log_level: info
    listen_uri: 127.0.0.1:$port
    profiles_path: /etc/crowdsec/profiles.yaml
    console_path: $dir/console.yaml
    trusted_ips:
      - 127.0.0.1
      - ::1
prometheus:
  enabled: false
  level: full
  listen_addr: 127.0.0.1
  listen_port: 6060
EOF

# Register a machine for the replay's agent in a fresh DB; keep that DB as the template.
rm -f "$dir/crowdsec.db" "$dir/base.db"
if ! cscli -c "$dir/config.yaml" --error machines add mamori-bench --auto --force \
    -f "$dir/local_api_credentials.yaml" >/dev/null 2>"$dir/setup.err"; then
  say "cscli machines add failed: $(tail -3 "$dir/setup.err")"
  exit 1
fi
mv "$dir/crowdsec.db" "$dir/base.db"
echo "$dir/config.yaml"
