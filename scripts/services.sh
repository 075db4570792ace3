# Sourced by scripts/test and .ci/run: makes sure PostgreSQL and Redis are
# answering on loopback, installing them from Debian packages and starting
# them when they are not, then exports the URLs the tests read.
# Needs root (or sudo) only when something must be installed or started.

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"
	elif command -v sudo >/dev/null 2>&1; then sudo "$@"
	else
		echo "services: need root to run: $*" >&2
		echo "services: start PostgreSQL and Redis yourself, or export COWRIE_ENRICH_TEST_POSTGRES and COWRIE_ENRICH_TEST_REDIS" >&2
		return 1
	fi
}

apt_updated=""
apt_install() {
	if [ -z "$apt_updated" ]; then
		as_root apt-get update -qq
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

postgres_up() {
	command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432
}

ensure_postgres() {
	if [ -n "${COWRIE_ENRICH_TEST_POSTGRES:-}" ]; then return 0; fi
	if ! postgres_up; then
		if ! command -v pg_ctlcluster >/dev/null 2>&1; then
			echo "services: installing PostgreSQL (Debian package postgresql)" >&2
			apt_install postgresql
		fi
		local version
		version=$(ls /etc/postgresql | sort -V | tail -n 1)
		local hba="/etc/postgresql/$version/main/pg_hba.conf"
		# Tests connect over loopback as postgres without a password.
		if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
			as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
		fi
		echo "services: starting PostgreSQL $version" >&2
		as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
		for _ in $(seq 1 30); do postgres_up && break; sleep 1; done
		postgres_up || { echo "services: PostgreSQL did not come up on 127.0.0.1:5432" >&2; return 1; }
	fi
	if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
		psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test" >/dev/null
	fi
	export COWRIE_ENRICH_TEST_POSTGRES="postgres://postgres@127.0.0.1:5432/test"
}

redis_up() {
	command -v redis-cli >/dev/null 2>&1 && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]
}

ensure_redis() {
	if [ -n "${COWRIE_ENRICH_TEST_REDIS:-}" ]; then return 0; fi
	if ! redis_up; then
		if ! command -v redis-server >/dev/null 2>&1; then
			echo "services: installing Redis (Debian package redis-server)" >&2
			apt_install redis-server
		fi
		echo "services: starting Redis" >&2
		as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
		for _ in $(seq 1 30); do redis_up && break; sleep 1; done
		redis_up || { echo "services: Redis did not come up on 127.0.0.1:6379" >&2; return 1; }
	fi
	export COWRIE_ENRICH_TEST_REDIS="redis://127.0.0.1:6379/0"
}

# ensure_chromium installs Debian's chromium for the status page test
# (headless, driven from the test itself) when no browser is found.
ensure_chromium() {
	if [ -n "${COWRIE_ENRICH_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
		return 0
	fi
	echo "services: installing Chromium (Debian package chromium) for the status page test" >&2
	apt_install chromium
}
