# registry.sh - every method family's --list and its man page agree: each
# listed name has its entry (.TP, .B NAME) in the man page section that
# documents the family, and that section documents nothing unlisted.
# One line per family below: tool, list option, man page, section title.
suite=registry
. tests/tools/lib.sh

check_family() { # name tool list-option man-page section-title
	name=$1 tool=$2 opt=$3 page=$4 title=$5
	listed=$("$WEFT_BIN/$tool" "$opt" | grep -v '^	' | cut -f1 | sort)
	documented=$(awk -v t="$title" '
		/^\.S[SH] / { insec = (substr($0, 5) == t); next }
		insec && prev == ".TP" && /^\.B / { print $2 }
		{ prev = $0 }' "$page" | sort)
	if [ -z "$listed" ]; then fail "$name" "$tool $opt listed nothing"
	elif [ "$listed" != "$documented" ]; then
		fail "$name" "$tool $opt lists [$(echo $listed)], $page section '$title' documents [$(echo $documented)]"
	else pass "$name"; fi
}

check_family chat_templates tokenize --list-templates man/tokenize.1 "Chat templates"
check_family bench_readers eval-interleaved --list-formats man/eval-interleaved.1 "INPUT FORMATS"
check_family metrics eval-interleaved --list-metrics man/eval-interleaved.1 "METRICS"
check_family mc_extractors eval-interleaved --list-extractors man/eval-interleaved.1 "Answer extraction"
check_family prune_methods prune-tokens --list man/prune-tokens.1 "METHODS"
check_family kv_methods kvcompress --list man/kvcompress.1 "METHODS"
# eval-interleaved's stages list the same families
check_family eval_prune_methods eval-interleaved --list-prune man/prune-tokens.1 "METHODS"
check_family eval_kv_methods eval-interleaved --list-kv man/kvcompress.1 "METHODS"
exit $status
