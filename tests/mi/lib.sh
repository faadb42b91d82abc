# SPDX-License-Identifier: MIT
# Shared by the MI tests: TAP output and a private mi-test-server behind the
# AF_MCTP router. Needs MI_TEST_SERVER, MCTP_CTL and MCTP_PRELOAD (set by
# tests/mi/meson.build).

set -u

for v in MI_TEST_SERVER MCTP_CTL MCTP_PRELOAD; do
	eval "p=\${$v:-}"
	if [ -z "$p" ] || [ ! -e "$p" ]; then
		# Set by meson; a missing tool is a failure, never a skip.
		echo "1..1"
		echo "not ok 1 - $v not set"
		exit 1
	fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/nvemu-mi.XXXXXX")
SOCK=$T/mctp.sock
SPID=
_n=0
_failed=0

_finish() {
	if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
		kill -TERM "$SPID" 2>/dev/null
		wait "$SPID" 2>/dev/null
	fi
	if [ "$_failed" -ne 0 ] && [ -s "$T/server.log" ]; then
		echo "# server log:"
		tail -n 20 "$T/server.log" | sed 's/^/#   /'
	fi
	rm -rf "$T"
	echo "1..$_n"
}
trap _finish EXIT

ok() {
	_n=$((_n + 1))
	echo "ok $_n - $*"
}

not_ok() {
	_n=$((_n + 1))
	_failed=1
	echo "not ok $_n - $*"
}

# check DESCRIPTION COMMAND...: ok when the command succeeds.
check() {
	d=$1
	shift
	if "$@" >"$T/cmd.out" 2>&1; then
		ok "$d"
	else
		not_ok "$d"
		sed 's/^/#   /' "$T/cmd.out" | tail -n 15
	fi
}

# In a sanitizer build the preload library needs the ASan runtime loaded
# first, and nvme-cli's own leaks are not ours.
PRELOAD=$MCTP_PRELOAD
asan=$(ldd "$MCTP_PRELOAD" 2>/dev/null | sed -n 's/.*\(libasan[^ ]*\) => \([^ ]*\).*/\2/p')
if [ -n "$asan" ]; then
	PRELOAD="$asan:$MCTP_PRELOAD"
	export ASAN_OPTIONS=detect_leaks=0
fi

# Run a client through the preload library.
pre() {
	LD_PRELOAD="$PRELOAD" NVEMU_MCTP_SOCKET="$SOCK" "$@"
}

# Start the MI device; SN and MN are the model's values.
start_server() {
	"$MI_TEST_SERVER" "$SOCK" "$@" >"$T/server.out" 2>"$T/server.log" &
	SPID=$!
	i=0
	while ! grep -q '^ready' "$T/server.out" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$SPID" 2>/dev/null; then
			echo "Bail out! mi-test-server did not start"
			cat "$T/server.log" >&2
			exit 1
		fi
		sleep 0.05
	done
	SN=$(sed -n 's/^ready sn=\([^ ]*\) mn=\(.*\)$/\1/p' "$T/server.out")
	MN=$(sed -n 's/^ready sn=\([^ ]*\) mn=\(.*\)$/\2/p' "$T/server.out")
}
