#!/usr/bin/env bash
# Random secrets for deploy/compose.yaml, one file each under deploy/secrets/: the directory
# is the owner's only (0700); the files are 0444, since Compose bind-mounts them as they are
# and each container reads them as its own unprivileged user.
# Existing files are kept, so running it again never rotates a secret by accident; to
# rotate one, follow docs/operations.md ("Rotating secrets").  Needs python3 and openssl.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
chmod 0700 "$dir"
umask 0222

write() {  # write NAME VALUE: only when the file does not exist yet
  if [ ! -e "$dir/$1" ]; then
    printf '%s\n' "$2" > "$dir/$1"
    echo "made $dir/$1"
  fi
}
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(48))'; }

write secret-key "$(random)"
write pii-index-key "$(random)"
write pii-encryption-keys "k1:$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
write metrics-token "$(random)"
write grafana-admin-password "$(random)"
write postgres-password "$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
write redis-password "$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
if [ ! -e "$dir/jwt-private-key" ]; then
  openssl genpkey -algorithm ed25519 -out "$dir/jwt-private-key"
  chmod 0444 "$dir/jwt-private-key"  # openssl makes it 0400, unreadable to the container user
  echo "made $dir/jwt-private-key"
fi
# Derived from the passwords above (remade when missing).
pg_password="$(cat "$dir/postgres-password")"
redis_password="$(cat "$dir/redis-password")"
write database-url "postgresql+asyncpg://quantdesk:${pg_password}@postgres:5432/quantdesk"
write redis-url "redis://quantdesk:${redis_password}@redis:6379/0"
write redis-users.acl "user default off
user quantdesk on >${redis_password} ~* &* +@all"
