# install.sh - the installed tree stands on its own (make test stages it
# with `make install DESTDIR=...`, WEFT_STAGE): every public header
# compiles alone in an empty file; a program links against libweft.so with
# pkg-config's flags and runs; libweft.so exports exactly the functions and
# data the public headers declare (htslib's header_syms idea); and no
# header of a lower layer includes one of a higher (tools -> lib -> kernels
# -> base).
suite=install
. tests/tools/lib.sh
S=${WEFT_STAGE:-}
if [ -z "$S" ] || [ ! -d "$S/usr/local/include/weft" ]; then
	skip staged "no staged install in WEFT_STAGE (run through make test)"
	exit 0
fi
S=$(cd "$S" && pwd)
inc=$S/usr/local/include
lib=$S/usr/local/lib
pc() { PKG_CONFIG_SYSROOT_DIR=$S PKG_CONFIG_PATH=$lib/pkgconfig pkg-config "$@" weft; }
CC=${CC:-cc}

# each public header alone, as a user includes it
bad=
for h in "$inc"/weft/*.h; do
	n=$(basename "$h")
	printf '#include <weft/%s>\nint weft_install_check_;\n' "$n" >"$TMP/one.c"
	$CC -std=c11 -Wall -Wextra -Werror $(pc --cflags) -c "$TMP/one.c" -o "$TMP/one.o" 2>"$TMP/cc.err" ||
		bad="$bad $n($(head -n 1 "$TMP/cc.err"))"
done
[ -z "$bad" ] && pass headers_alone || fail headers_alone "do not compile alone:$bad"

# a program linked with pkg-config's flags against the shared library
cat >"$TMP/prog.c" <<'EOC'
#include <stdio.h>
#include <weft/kv.h>
#include <weft/util.h>
int main(void)
{
	weft_kv *kv = weft_kv_alloc(1, 1, 32, 4, WEFT_KV_Q8_0);
	if (!kv)
		return 1;
	printf("%s %s %llu\n", WEFT_VERSION, weft_kv_type_name(kv->layer[0].type), (unsigned long long)weft_kv_bytes(kv));
	weft_kv_free(kv);
	return 0;
}
EOC
# (under make check-asan the library is instrumented: so is the program)
if $CC -std=c11 ${WEFT_SAN_FLAGS:-} $(pc --cflags) "$TMP/prog.c" -o "$TMP/prog" $(pc --libs) 2>"$TMP/cc.err"; then
	out=$(LD_LIBRARY_PATH=$lib "$TMP/prog")
	LD_LIBRARY_PATH=$lib ldd "$TMP/prog" | grep -q "$lib/libweft.so" && [ "${out#* }" = "q8_0 0" ] &&
		pass links_shared || fail links_shared "ran with output '$out' / not linked to the staged libweft.so"
else
	fail links_shared "$(head -n 2 "$TMP/cc.err")"
fi

# exports = public declarations
nm -D --defined-only "$lib/libweft.so.0" | awk '$2 ~ /^[TDBRW]$/ { sub(/@.*/, "", $3); print $3 }' | sort -u >"$TMP/exported"
cat "$inc"/weft/*.h >"$TMP/public.h"
extra=$(while read -r s; do grep -qw -- "$s" "$TMP/public.h" || printf ' %s' "$s"; done <"$TMP/exported")
# functions the public headers declare (not static inline, not typedefs)
grep -hoE '^[a-z][a-z0-9_ *]*[ *](weft_[a-z0-9_]+)\(' "$inc"/weft/*.h | grep -v '^static\|^typedef' |
	sed -E 's/.*(weft_[a-z0-9_]+)\($/\1/' | sort -u >"$TMP/declared"
missing=$(comm -23 "$TMP/declared" "$TMP/exported" | tr '\n' ' ')
[ -s "$TMP/exported" ] && [ -z "$extra" ] && [ -z "$missing" ] && pass exports ||
	fail exports "exported but not public:${extra:- none}; declared but not exported: ${missing:-none}"

# layering: kernels/ and base/ never include a header from a layer above
up=$(grep -H '#include "' base/*.[ch] kernels/*.[ch] 2>/dev/null | while IFS= read -r l; do
	f=${l%%:*} h=$(printf '%s' "$l" | sed 's/.*#include "\([^"]*\)".*/\1/')
	case $f in
	base/*) [ -f "base/$h" ] || printf ' %s->%s' "$f" "$h" ;;
	kernels/*) [ -f "kernels/$h" ] || [ -f "base/$h" ] || printf ' %s->%s' "$f" "$h" ;;
	esac
done)
[ -z "$up" ] && pass layering || fail layering "includes running upwards:$up"
exit $status
