#!/bin/sh
# The team's hardening baseline for Alpine-based images. Run as root by each Dockerfile-*
# (COPY'd in, then deleted); settings come from the environment:
#   APP_USER, APP_UID    the non-root user applications run as
#   KEEP_ACCOUNTS        accounts kept besides root and APP_USER (e.g. nginx)
#   APP_DIRS             folders the application user owns (config and data)
# `cargo xtask verify IMAGE` checks the result against images.toml's [verify] rules.
set -eu

: "${APP_USER:?}" "${APP_UID:?}"
KEEP_ACCOUNTS="root ${APP_USER} ${KEEP_ACCOUNTS:-}"
APP_DIRS="${APP_DIRS:-/etc/sbl /var/lib/sbl}"
BANNER='You are accessing a U.S. Government information system. Use may be monitored, recorded and audited; unauthorized use is prohibited and subject to criminal and civil penalties.'

kept() {
    case " ${KEEP_ACCOUNTS} " in *" $1 "*) return 0 ;; *) return 1 ;; esac
}

# Security patches.
apk upgrade --no-cache

# Accounts: drop what is not needed (the application user's uid may be taken by a base
# image's own user, e.g. node), then add the application user with no login.
for user in $(cut -d: -f1 /etc/passwd); do
    kept "$user" || deluser "$user" 2>/dev/null || true
done
for group in $(cut -d: -f1 /etc/group); do
    kept "$group" || delgroup "$group" 2>/dev/null || true
done
if ! id "$APP_USER" >/dev/null 2>&1; then
    addgroup -g "$APP_UID" "$APP_USER"
    adduser -D -u "$APP_UID" -G "$APP_USER" -s /sbin/nologin -h "/home/$APP_USER" "$APP_USER"
fi
# shellcheck disable=SC2086 # APP_DIRS is a list of folders
mkdir -p "/home/$APP_USER" $APP_DIRS
# shellcheck disable=SC2086
chown -R "$APP_USER:$APP_USER" "/home/$APP_USER" $APP_DIRS
# Every remaining account: nologin shell, locked password.
sed -i -E 's#^([^:]*:[^:]*:[^:]*:[^:]*:[^:]*:[^:]*):.*$#\1:/sbin/nologin#' /etc/passwd
sed -i -E 's#^([^:]+):[^:!*]*:#\1:!:#' /etc/shadow

# The login banner.
printf "echo '%s'\n" "$BANNER" >> /etc/profile

# No setuid or setgid binaries; no world-writable files; sticky world-writable folders.
find / -xdev -type f -perm /6000 -exec chmod a-s {} +
find / -xdev -type f -perm -0002 -exec chmod o-w {} +
find / -xdev -type d -perm -0002 ! -perm -1000 -exec chmod +t {} +
chmod 1777 /tmp

# Scheduled jobs, kernel tuning, mounts and root's home have no place in a container.
rm -rf /etc/crontabs /etc/periodic /var/spool/cron /etc/sysctl.conf /etc/sysctl.d \
    /etc/modprobe.d /etc/modules /etc/fstab /root /var/cache/apk/* /tmp/*

# Links that point nowhere.
find / -xdev -type l ! -exec test -e {} \; -exec rm -f {} +

# Tools an attacker uses, last, since the steps above need some of them.
rm -f /bin/su /usr/bin/sudo /usr/bin/hexdump /usr/bin/od /usr/bin/strings \
    /bin/chgrp /usr/bin/chgrp /bin/ln /usr/bin/ln
