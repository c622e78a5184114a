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
# Fresh random values, all from one python3 call: "name value" lines.
while read -r name value; do
  write "$name" "$value"
done < <(python3 - <<'PY'
import base64, os, secrets
for name in ("secret-key", "pii-index-key", "metrics-token", "grafana-admin-password"):
    print(name, secrets.token_urlsafe(48))
print("pii-encryption-keys", "k1:" + base64.urlsafe_b64encode(os.urandom(32)).decode())
for name in ("postgres-password", "redis-password"):
    print(name, secrets.token_hex(24))
PY
)
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
