#!/bin/sh
# mixed-text.sh - write a deterministic mixed-text corpus for tokenizer
# throughput benchmarks.
#
#   sh tests/bench/mixed-text.sh OUT [MIB]
#
# Writes about MIB mebibytes (default 4; the output ends at the first line
# boundary past that size) of UTF-8 text to OUT: English prose, source code
# (C, Python, shell, JSON), numbers and dates, markup and URLs, runs of spaces,
# tabs and blank lines, other scripts (Cyrillic, Greek, Arabic, Hebrew,
# Devanagari, Thai, Chinese, Japanese, Korean, accented Latin) and emoji
# (modifiers, ZWJ sequences, flags, keycaps).  Everything is generated here
# from the word lists below with a fixed-seed Park-Miller generator written
# in awk arithmetic that is exact in doubles, so every POSIX awk produces the
# same bytes.  If ../shared/data/vocab/*.inp (or $WEFT_SHARED/data/vocab) is
# present, those tokenizer test inputs are mixed in too (read at run time,
# never copied into the repository); the output then differs from a run
# without them.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: mixed-text.sh OUT [MIB]" >&2
	exit 2
fi
out=$1
mib=${2:-4}
case $mib in
'' | *[!0-9]*) echo "mixed-text.sh: MIB must be a whole number: $mib" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
vocab=${WEFT_SHARED:-$here/../../../shared}/data/vocab
set -- /dev/null
for f in "$vocab"/*.inp; do
	[ -f "$f" ] && set -- "$@" "$f"
done

LC_ALL=C awk -v target="$((mib * 1048576))" '
# Tokenizer test inputs, minus their separator lines.
$0 != "__ggml_vocab_test__" { pool[npool++] = $0 }

function rnd(n) {              # uniform integer in [0, n)
	seed = (seed * 16807) % 2147483647
	return int(seed / 2147483647 * n)
}
function pick(list, n) { return list[rnd(n)] }
function emit(s) { printf "%s", s; bytes += length(s) }
function split_into(s, arr) { return split(s, arr, "|") }

function sentence(    n, i, w, s) {
	n = 4 + rnd(14)
	s = ""
	for (i = 0; i < n; i++) {
		w = pick(words, nwords)
		if (i == 0)
			w = toupper(substr(w, 1, 1)) substr(w, 2)
		else if (rnd(9) == 0)
			w = pick(punct_in, npunct_in) w
		s = s (i ? " " : "") w
		if (i < n - 1 && rnd(8) == 0)
			s = s pick(commas, ncommas)
	}
	return s pick(ends, nends)
}
function prose(    n, i, s) {
	n = 2 + rnd(6)
	s = ""
	for (i = 0; i < n; i++)
		s = s (i ? " " : "") sentence()
	emit(s "\n\n")
}
function ident(    a, b) {
	a = pick(idents, nidents)
	b = pick(idents, nidents)
	if (rnd(3) == 0) return a "_" b
	if (rnd(2) == 0) return a toupper(substr(b, 1, 1)) substr(b, 2)
	return a
}
function code(    k, i, n, x, y, ind) {
	k = rnd(4)
	x = ident(); y = ident()
	if (k == 0) {
		emit("static int " x "(const char *" y ", size_t n)\n{\n")
		n = 2 + rnd(5)
		for (i = 0; i < n; i++)
			emit("\tif (" y "[" i "] == '\''" pick(chars, nchars) "'\'' && n > " rnd(4096) ")\n\t\treturn -" rnd(32) ";\n")
		emit("\treturn (int)(n >> " rnd(8) ") ^ 0x" sprintf("%x", rnd(65536)) ";  /* " sentence() " */\n}\n\n")
	} else if (k == 1) {
		emit("def " x "(" y ", *args, **kwargs):\n    \"\"\"" sentence() "\"\"\"\n")
		n = 2 + rnd(5)
		ind = "    "
		for (i = 0; i < n; i++) {
			emit(ind "for " ident() " in range(" rnd(100) ", len(" y "), " 1 + rnd(3) "):\n")
			ind = ind "    "
		}
		emit(ind "yield {\"" x "\": " y "[" rnd(9) ":" 10 + rnd(90) "], \"ok\": True}\n\n")
	} else if (k == 2) {
		emit("{\n  \"" x "\": " rnd(100000) ",\n  \"" y "\": [" rnd(10) ", " rnd(1000) / 8 ", -" rnd(99) ".5e-" rnd(9) ", null],\n")
		emit("  \"text\": \"" sentence() "\",\n  \"nested\": {\"" ident() "\": false, \"id\": \"" sprintf("%08x", rnd(2147483647)) "\"}\n}\n\n")
	} else {
		emit("#!/bin/sh\nfor f in ./" x "/*." pick(exts, nexts) "; do\n\t[ -f \"$f\" ] || continue\n")
		emit("\t" y "=$(grep -c '\''^" pick(idents, nidents) "'\'' \"$f\" 2>/dev/null) && echo \"$f: ${" y ":-0}\" >> /tmp/" x ".log\ndone | sort -n -k2 | head -n " rnd(50) "\n\n")
	}
}
function numbers(    n, i, s) {
	n = 3 + rnd(8)
	for (i = 0; i < n; i++) {
		s = sprintf("%04d-%02d-%02d %02d:%02d:%02d", 1970 + rnd(60), 1 + rnd(12), 1 + rnd(28), rnd(24), rnd(60), rnd(60))
		s = s sprintf("  %d\t%.3f\t-%d.%02d\t%d%%\t$%d,%03d.%02d\t0x%08X", rnd(2147483647), rnd(1000000) / 997, rnd(1000), rnd(100), rnd(101), rnd(1000), rnd(1000), rnd(100), rnd(2147483647))
		s = s sprintf("\tv%d.%d.%d\t%de%d\t+1 (%03d) %03d-%04d\t%d/%d\n", rnd(10), rnd(30), rnd(200), 1 + rnd(9), rnd(40) - 20, rnd(1000), rnd(1000), rnd(10000), rnd(100), 1 + rnd(100))
		emit(s)
	}
	emit("\n")
}
function spaces(n,    s) {
	s = ""
	while (n-- > 0) s = s " "
	return s
}
function whitespace(    n, i, s) {
	n = 2 + rnd(6)
	for (i = 0; i < n; i++) {
		s = pick(ws, nws) pick(words, nwords) spaces(rnd(12)) pick(words, nwords)
		if (rnd(4) == 0) s = s spaces(1 + rnd(3))          # trailing spaces
		if (rnd(6) == 0) s = s "\r"                        # CRLF line
		emit(s "\n")
		if (rnd(3) == 0) emit(substr("\n\n\n\n", 1, 1 + rnd(4)))
	}
}
function markup(    x) {
	x = ident()
	emit("## " sentence() "\n\n- **" pick(words, nwords) "**: `" x "()` -> [" pick(words, nwords) "](https://example.org/" x "?q=" rnd(1000) "&lang=" pick(langs, nlangs) "#" pick(idents, nidents) ")\n")
	emit("<p class=\"" x "\">" sentence() " &amp; &lt;" pick(idents, nidents) "&gt;</p>  <!-- " rnd(99999) " -->\n")
	emit("> " sentence() " -- " pick(idents, nidents) "." pick(idents, nidents) "@example.com\n\n")
}
function foreign(    n, i, s) {
	n = 3 + rnd(10)
	s = ""
	for (i = 0; i < n; i++) {
		s = s pick(intl, nintl)
		if (rnd(5) == 0) s = s pick(intl_punct, nintl_punct)
		s = s (rnd(4) ? " " : "")
	}
	emit(s "\n")
	if (rnd(2) == 0) emit(sentence() " " pick(intl, nintl) " " pick(emoji, nemoji) "\n")
	emit("\n")
}
function emojis(    n, i, s) {
	n = 2 + rnd(12)
	s = ""
	for (i = 0; i < n; i++) {
		s = s pick(emoji, nemoji)
		if (rnd(3) == 0) s = s " " pick(words, nwords) " "
	}
	emit(s "\n")
}
function vocab_chunk(    n, i, j) {
	if (!npool) return
	j = rnd(npool)
	n = 1 + rnd(12)
	for (i = 0; i < n; i++)
		emit(pool[(j + i) % npool] "\n")
}

END {
	seed = 20240607
	nwords = split_into("the|of|and|to|a|in|is|it|that|was|for|on|are|with|as|his|they|be|at|one|have|this|from|or|had|by|word|but|what|some|we|can|out|other|were|all|there|when|up|use|your|how|said|an|each|she|which|do|their|time|if|will|way|about|many|then|them|write|would|like|so|these|her|long|make|thing|see|him|two|has|look|more|day|could|go|come|did|number|sound|no|most|people|my|over|know|water|than|call|first|who|may|down|side|been|now|find|tokenizer|model|weights|inference|byte-pair|merge|vocabulary|don'\''t|it'\''s|we'\''re|they'\''ll|I'\''ve|isn'\''t|O'\''Brien|state-of-the-art|e.g.|i.e.|etc.|Dr.|Mr.|U.S.|NASA|GPU|CPU|RAM|llama|quantization|throughput|latency|benchmark|megabytes|per|second|unicode|UTF-8|naïve|café|résumé|coöperate|jalapeño|façade|über", words)
	npunct_in = split_into("\"|(|'\''|[|\"|«|“|‘", punct_in)
	ncommas = split_into(",|,|,|;|:| —| -|,\"|)|\"|”|’", commas)
	nends = split_into(".|.|.|.|!|?|...|?!|.\"|.)|…|!!", ends)
	nidents = split_into("buf|len|count|index|ctx|tok|vocab|merge|rank|node|next|prev|head|tail|size|cap|data|value|key|hash|table|token|piece|score|state|result|err|out|input|offset|pos|batch|layer|tensor|shape|stride|alpha|beta|gamma|delta|item|entry|cache|pool|arena|slot|flag|mode|opts", idents)
	nchars = split_into("a|z|0|9|_|-|+|.|,|;|:|/|*|(|)|[|]|{|}|<|>|=|!|?|#|@|$|%|^|&|~", chars)
	nexts = split_into("c|h|py|sh|txt|json|md|gguf|csv|log", exts)
	nlangs = split_into("en|de|fr|ru|zh-CN|ja|ko|ar|he|hi|th|el|pt-BR", langs)
	nws = split_into("|  |    |\t|\t\t|        | \t |\t    ", ws)
	nintl = split_into("Привет|мир|токенизатор|скорость|данные|модель|Ελληνικά|γλώσσα|καλημέρα|αλφάβητο|مرحبا|بالعالم|النموذج|اللغة|שלום|עולם|מודל|नमस्ते|दुनिया|भाषा|मॉडल|สวัสดี|ภาษาไทย|โลก|你好|世界|分词器|速度|模型|数据|中文文本|こんにちは|世界|トークナイザー|日本語の文章|ひらがな|カタカナ|안녕하세요|세계|토크나이저|한국어|Zürich|São Paulo|Łódź|Ærøskøbing|Þórshöfn|İstanbul|Kraków|Straße|ﬁnance|Ω≈ç√∫|½ ¼ ¾|™ © ®|→ ← ↑ ↓|∀x∈ℝ: x²≥0|€ £ ¥ ₹ ₩", intl)
	nintl_punct = split_into("，|。|、|！|？|：|；|「|」|《|》|،|؟|।|…|·", intl_punct)
	nemoji = split_into("😀|😂|🤔|👍|👍🏽|👋🏿|❤️|🔥|✨|🎉|🚀|🦙|🐍|🧪|📈|💾|⚡|☕|🌍|🌏|🇺🇸|🇯🇵|🇩🇪|🇧🇷|🇮🇳|👨‍👩‍👧‍👦|👩🏽‍💻|🏳️‍🌈|🧑‍🚀|1️⃣|#️⃣|©️|✔️|⭐|🤖|🙈|🫠|🪐", emoji)

	while (bytes < target) {
		k = rnd(100)
		if (k < 34) prose()
		else if (k < 50) code()
		else if (k < 60) numbers()
		else if (k < 67) whitespace()
		else if (k < 75) markup()
		else if (k < 87) foreign()
		else if (k < 94) emojis()
		else if (npool) vocab_chunk()
		else prose()
	}
}
' "$@" >"$out"
