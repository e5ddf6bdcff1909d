// Engine cases whose expected outputs and error messages were produced by Go's text/template (go1.19, plus the
// two newer-Go behaviours noted inline). Data is JSON, decoded the way Go decodes it into `any` (numbers are
// float64, so `eq .n 1` compares float64 with int).
import { describe, expect, it } from "vitest";
import { type MissingKey, parseTemplate } from "./gotemplate";
import { ollamaFuncs } from "./ollama-values";

type Expected = { out: string } | { error: string };
const CASES: [template: string, data: string, expected: Expected, missingKey?: MissingKey][] = [
  ["a  {{- 1 -}}  b", "null", { out: "a1b" }],
  ["a \n\t{{- 1 }} \n b", "null", { out: "a1 \n b" }],
  ["x {{- /* c */ -}} y", "null", { out: "xy" }],
  ["x {{/* multi\nline */}} y", "null", { out: "x  y" }],
  ["{{-3}}", "null", { out: "-3" }],
  ["{{ -3 }}|{{- 3 -}}|", "null", { out: "-3|3|" }],
  ["{{ `raw\\n` }}{{ \"esc\\t\\u00e9\\x41\" }}{{ 'a' }}", "null", { out: "raw\\nesc\téA97" }],
  ["{{ .a.b.c }}", '{"a":{"b":{"c":"deep"}}}', { out: "deep" }],
  ["{{ .a.missing.c }}", '{"a":{}}', { out: "<no value>" }],
  [
    "{{ .a.missing.c }}",
    '{"a":{}}',
    { error: 'template: :1:5: executing "" at <.a.missing.c>: nil pointer evaluating interface {}.c' },
    "zero",
  ],
  [
    "{{ .a.s.x }}",
    '{"a":{"s":"str"}}',
    { error: 'template: :1:5: executing "" at <.a.s.x>: can\'t evaluate field x in type interface {}' },
  ],
  ["{{ .missing }}", "{}", { out: "<no value>" }, "zero"],
  ["{{ $x := .a }}{{ $x.b }}{{ $.a.b }}", '{"a":{"b":7}}', { out: "77" }],
  ["{{ $x := 1 }}{{ range .l }}{{ $x = . }}{{ end }}{{ $x }}", '{"l":[1,2,3]}', { out: "3" }],
  ["{{ range $i, $v := .l }}{{ $i }}={{ $v }};{{ end }}", '{"l":["a","b"]}', { out: "0=a;1=b;" }],
  ["{{ range $v := .l }}{{ $v }};{{ end }}", '{"l":["a","b"]}', { out: "a;b;" }],
  ["{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}", '{"m":{"z":1,"a":2,"B":3}}', { out: "B=3;a=2;z=1;" }],
  [
    "{{ range .l }}{{ if eq . 2.0 }}{{ continue }}{{ end }}{{ if eq . 4.0 }}{{ break }}{{ end }}{{ . }}{{ end }}",
    '{"l":[1,2,3,4,5]}',
    { out: "13" },
  ],
  [
    "{{ range .l }}x{{ else }}empty{{ end }}|{{ range .missing }}x{{ else }}none{{ end }}",
    '{"l":[]}',
    { out: "empty|none" },
  ],
  [
    "{{ range .s }}x{{ end }}",
    '{"s":"abc"}',
    { error: 'template: :1:9: executing "" at <.s>: range can\'t iterate over abc' },
  ],
  [
    "{{ with .a }}{{ . }}{{ else }}no{{ end }}|{{ with .b }}{{ . }}{{ else }}no{{ end }}",
    '{"a":"yes","b":""}',
    { out: "yes|no" },
  ],
  ["{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}", '{"a":0,"b":[1]}', { out: "B" }],
  ['{{ if and .a .b }}1{{ end }}{{ or .a .b "z" }}|{{ and 1 0 2 }}|{{ or 0 "" }}', '{"a":"","b":"x"}', { out: "x|0|" }],
  [
    '{{ not 0 }} {{ not 1 }} {{ not "" }} {{ not .m }} {{ not .l }}',
    '{"m":{},"l":[0]}',
    { out: "true false true true false" },
  ],
  [
    '{{ eq 1 1 }} {{ eq 1 2 3 1 }} {{ ne "a" "b" }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt "b" "a" }} {{ ge 1.5 2.5 }}',
    "null",
    { out: "true true true true true true false" },
  ],
  [
    "{{ eq .n 1 }}",
    '{"n":1}',
    { error: 'template: :1:3: executing "" at <eq .n 1>: error calling eq: incompatible types for comparison' },
  ],
  ["{{ eq .n 1.0 }}", '{"n":1}', { out: "true" }],
  ['{{ eq .missing "x" }} {{ eq .missing nil }}', "{}", { out: "false true" }],
  ['{{ eq .missing "x" }}', "{}", { out: "false" }, "zero"],
  [
    "{{ lt .missing 1 }}",
    "{}",
    { error: 'template: :1:3: executing "" at <lt .missing 1>: error calling lt: invalid type for comparison' },
  ],
  [
    "{{ eq .l .l }}",
    '{"l":[1]}',
    {
      error:
        'template: :1:3: executing "" at <eq .l .l>: error calling eq: non-comparable type [%!s(float64=1)]: []interface {}',
    },
  ],
  [
    "{{ lt true false }}",
    "null",
    { error: 'template: :1:3: executing "" at <lt true false>: error calling lt: invalid type for comparison' },
  ],
  ['{{ len .s }} {{ len .l }} {{ len .m }} {{ len "héllo" }}', '{"s":"abc","l":[1,2],"m":{"a":1}}', { out: "3 2 1 6" }],
  [
    "{{ len .missing }}",
    "{}",
    {
      error:
        'template: :1:3: executing "" at <len .missing>: error calling len: reflect: call of reflect.Value.Type on zero Value',
    },
  ],
  ["{{ len 3 }}", "null", { error: 'template: :1:3: executing "" at <len 3>: error calling len: len of type int' }],
  [
    '{{ index .l 1 }} {{ index .m "a" }} {{ index .m "zz" }} {{ index .n 0 1 }} {{ index "abc" 1 }}',
    '{"l":[1,2],"m":{"a":"x"},"n":[[1,2]]}',
    { out: "2 x <no value> 2 98" },
  ],
  [
    "{{ index .l 5 }}",
    '{"l":[1,2]}',
    { error: 'template: :1:3: executing "" at <index .l 5>: error calling index: index out of range: 5' },
  ],
  [
    "{{ index .l 2 }}",
    '{"l":[1,2]}',
    { error: 'template: :1:3: executing "" at <index .l 2>: error calling index: reflect: slice index out of range' },
  ],
  [
    "{{ index .l 1.0 }}",
    '{"l":[1,2]}',
    {
      error:
        'template: :1:3: executing "" at <index .l 1.0>: error calling index: cannot index slice/array with type float64',
    },
  ],
  [
    '{{ slice .l 1 }} {{ slice .l 0 1 }} {{ slice "hello" 1 3 }} {{ slice .l }}',
    '{"l":[1,2,3]}',
    { out: "[2 3] [1] el [1 2 3]" },
  ],
  [
    "{{ slice .l 2 1 }}",
    '{"l":[1,2,3]}',
    { error: 'template: :1:3: executing "" at <slice .l 2 1>: error calling slice: invalid slice index: 2 > 1' },
  ],
  ["{{ len (slice .l 1) }}", '{"l":[1,2,3]}', { out: "2" }],
  ['{{ print 1 2 "a" "b" 3 .f nil }}|{{ println "a" 1 }}|', '{"f":1.5}', { out: "1 2ab3 1.5 <nil>|a 1\n|" }],
  [
    '{{ printf "%d %s %v %q %t" 42 "str" .l "q\\"" true }}',
    '{"l":[1,"a",{"k":null}]}',
    { out: '42 str [1 a map[k:<nil>]] "q\\"" true' },
  ],
  [
    '{{ printf "%5d|%-5d|%05d|%+d|%x|%X|%o|%b|%c|%U" 42 42 42 42 255 255 8 5 65 65 }}',
    "null",
    { out: "   42|42   |00042|+42|ff|FF|10|101|A|U+0041" },
  ],
  [
    '{{ printf "%f|%.2f|%8.3f|%e|%.3e|%g|%G|%v" 3.14159 2.675 1.5 123456.789 0.000123 1e21 1e-7 100000.0 }}',
    "null",
    { out: "3.141590|2.67|   1.500|1.234568e+05|1.230e-04|1e+21|1E-07|100000" },
  ],
  ['{{ printf "%.0f %.0f %.0f %.1f" 0.5 1.5 2.5 0.25 }}', "null", { out: "0 2 2 0.2" }],
  [
    '{{ printf "%s|%10s|%-10s|%.2s|%q|%x|% x" "hi" "hi" "hi" "hello" "tab\\there" "hi" "hi" }}',
    "null",
    { out: 'hi|        hi|hi        |he|"tab\\there"|6869|68 69' },
  ],
  [
    '{{ printf "%d" "x" }}|{{ printf "%s" 1 }}|{{ printf "%s" }}|{{ printf "a" 1 "b" }}|{{ printf "%!" }}|{{ printf "%z" 1 }}',
    "null",
    { out: "%!d(string=x)|%!s(int=1)|%!s(MISSING)|a%!(EXTRA int=1, string=b)|%!!(MISSING)|%!z(int=1)" },
  ],
  ['{{ printf "%v %s %d" .f .f .f }}', '{"f":3}', { out: "3 %!s(float64=3) %!d(float64=3)" }],
  ['{{ printf "%v|%s" .m .missing }}', '{"m":{"b":[1,2],"a":true}}', { out: "map[a:true b:[1 2]]|%!s(<nil>)" }],
  ['{{ printf "%t %v" nil nil }}', "null", { out: "%!t(<nil>) <nil>" }],
  [
    "{{ printf .f }}",
    '{"f":1}',
    { error: 'template: :1:10: executing "" at <.f>: wrong type for value; expected string; got float64' },
  ],
  [
    '{{ printf "%5.1f|%-8v|%08.3f|%+.2e" -2.25 "ab" -3.14159 12345.678 }}',
    "null",
    { out: " -2.2|ab      |-003.142|+1.23e+04" },
  ],
  [
    '{{ printf "%v %v %v %v %v %v" 1e6 123456.0 0.0001 0.00001 -0.0 1e20 }}',
    "null",
    { out: "1e+06 123456 0.0001 1e-05 -0 1e+20" },
  ],
  [
    "{{ .big }} {{ .small }} {{ .neg }} {{ .int }}",
    '{"big":12345678901234567890,"small":1e-10,"neg":-2.5e-5,"int":42}',
    { out: "1.2345678901234567e+19 1e-10 -2.5e-05 42" },
  ],
  ['{{ printf "%6.2f%%" 99.5 }}', "null", { out: " 99.50%" }],
  [
    '{{ html "<a href=\'x\'>&\\"</a>" }}|{{ js "it\'s <b>\\"q\\"</b> = \\n é" }}|{{ urlquery "a b&c=d/é" }}',
    "null",
    {
      out: '&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;|it\\\'s \\u003Cb\\u003E\\"q\\"\\u003C/b\\u003E \\u003D \\u000A é|a+b%26c%3Dd%2F%C3%A9',
    },
  ],
  ['{{ html .missing }}|{{ html 1 2 }}|{{ "<x>" | html }}', "{}", { out: "&lt;no value&gt;|1 2|&lt;x&gt;" }],
  ['{{ "abc" | printf "%s-%s" "x" }}', "null", { out: "x-abc" }],
  ['{{ .l | len }}{{ 3 | printf "%d" }}', '{"l":[1,2]}', { out: "23" }],
  ["{{ (index .l 0).a }}", '{"l":[{"a":"chained"}]}', { out: "chained" }],
  ['{{ (len .l) }} {{ ("x") }}', '{"l":[1,2]}', { out: "2 x" }],
  [
    "{{ json . }}",
    '{"s":"<tag> & \\"q\\" \\u2028 \\u0001","n":[1.5,2,1e21,1e-7,0.000001],"b":true,"z":null,"o":{"b":1,"a":2}}',
    {
      out: '{"b":true,"n":[1.5,2,1e+21,1e-7,0.000001],"o":{"a":2,"b":1},"s":"\\u003ctag\\u003e \\u0026 \\"q\\" \\u2028 \\u0001","z":null}',
    },
  ],
  [
    '{{ json .missing }}|{{ json nil }}|{{ json "a" }}|{{ json 3 }}|{{ json 3.5 }}',
    "{}",
    { out: 'null|null|"a"|3|3.5' },
  ],
  [
    '{{ define "a" }}A{{ . }}{{ template "b" }}{{ end }}{{ define "b" }}B{{ . }}{{ end }}{{ template "a" 1 }}',
    "null",
    { out: "A1B<no value>" },
  ],
  ['{{ block "x" .v }}[{{ . }}]{{ end }}|{{ template "x" "y" }}', '{"v":"v"}', { out: "[v]|[y]" }],
  ['{{ define "r" }}{{ if gt . 0 }}{{ . }}{{ template "r" (slice "0123" 1) }}{{ end }}{{ end }}', "null", { out: "" }],
  [
    '{{ template "nope" }}',
    "null",
    { error: 'template: :1:12: executing "" at <{{template "nope"}}>: template "nope" not defined' },
  ],
  ['{{ $x := 1 }}{{ define "t" }}{{ $ }}{{ end }}{{ template "t" 5 }}', "null", { out: "5" }],
  [
    "{{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} {{ 1_000 }} {{ 1.5e3 }} {{ 'x' }} {{ .5 }}",
    "null",
    { out: "31 15 15 5 1000 1500 120 0.5" },
  ],
  ["{{ 99999999999999999999 }}", "null", { error: 'template: :1: integer overflow: "99999999999999999999"' }],
  ["{{ 1e400 }}", "null", { error: 'template: :1: illegal number syntax: "1e400"' }],
  ["{{ .a }", "null", { error: 'template: :1: unexpected "}" in operand' }],
  ["{{ .a ", "null", { error: "template: :1: unclosed action" }],
  ["{{ if .a }}x", "null", { error: "template: :1: unexpected EOF" }],
  ["{{ end }}", "null", { error: "template: :1: unexpected {{end}}" }],
  ["{{ else }}", "null", { error: "template: :1: unexpected {{else}}" }],
  ["{{ $x }}", "null", { error: 'template: :1: undefined variable "$x"' }],
  ["{{ nofunc 1 }}", "null", { error: 'template: :1: function "nofunc" not defined' }],
  ["{{ break }}", "null", { error: "template: :1: {{break}} outside {{range}}" }],
  ["{{ range .l }}{{ end }}{{ continue }}", "null", { error: "template: :1: {{continue}} outside {{range}}" }],
  ['{{ "unterminated }}', "null", { error: "template: :1: unterminated quoted string" }],
  ["{{ `raw }}", "null", { error: "template: :1: unterminated raw quoted string" }],
  ["{{/* unclosed }}", "null", { error: "template: :1: unclosed comment" }],
  ["{{/* c */ x }}", "null", { error: "template: :1: comment ends before closing delimiter" }],
  ["{{ (1 }}", "null", { error: "template: :1: unclosed left paren" }],
  ["{{ 1) }}", "null", { error: 'template: :1: unexpected ")" in command' }],
  ["{{ . | 1 }}", "null", { error: "template: :1: non executable command in pipeline stage 2" }],
  ["{{ }}", "null", { error: "template: :1: missing value for command" }],
  [
    "{{ .a.b 1 }}",
    '{"a":{"b":1}}',
    { error: 'template: :1:5: executing "" at <.a.b>: b is not a method but has arguments' },
  ],
  ["{{ 1 2 }}", "null", { error: 'template: :1:3: executing "" at <1>: can\'t give argument to non-function 1' }],
  ["{{ nil }}", "null", { error: 'template: :1:3: executing "" at <nil>: nil is not a command' }],
  [
    "{{ printf }}",
    "null",
    { error: 'template: :1:3: executing "" at <printf>: wrong number of args for printf: want at least 1 got 0' },
  ],
  ["{{ printf 1 }}", "null", { error: 'template: :1:10: executing "" at <1>: expected string; found 1' }],
  [
    "{{ not 1 2 }}",
    "null",
    { error: 'template: :1:3: executing "" at <not>: wrong number of args for not: want 1 got 2' },
  ],
  [
    "{{ eq 1 }}",
    "null",
    { error: 'template: :1:3: executing "" at <eq 1>: error calling eq: missing argument for comparison' },
  ],
  [
    '{{ eq 1 "a" }}',
    "null",
    { error: 'template: :1:3: executing "" at <eq 1 "a">: error calling eq: incompatible types for comparison' },
  ],
  ["{{ range $i, $v, $w := .l }}{{ end }}", "null", { error: "template: :1: too many declarations in range" }],
  ["{{ $x := 1 }}{{ $y = 2 }}", "null", { error: 'template: :1:21: executing "" at <2>: undefined variable: $y' }],
  [
    '{{ define "a" }}x{{ end }}{{ define "a" }}y{{ end }}',
    "null",
    { error: 'template: :1: template: multiple definition of template "a"' },
  ],
  ["{{ if }}{{ end }}", "null", { error: "template: :1: missing value for if" }],
  [
    "line1\nline2 {{ .a.b }}",
    '{"a":3}',
    { error: 'template: :2:11: executing "" at <.a.b>: can\'t evaluate field b in type interface {}' },
  ],
  [
    '{{ template "x" }}',
    "null",
    { error: 'template: :1:12: executing "" at <{{template "x"}}>: template "x" not defined' },
  ],
  ["{{ .a | .b }}", "{}", { error: 'template: :1:8: executing "" at <.b>: b is not a method but has arguments' }],
  ["{{ with $x := .a }}{{ $x }}{{ end }}{{ $x }}", "{}", { error: 'template: :1: undefined variable "$x"' }],
  ["{{ if true }}\n{{ else if false }}\n{{ end", "null", { error: "template: :3: unclosed action" }],
  ["{{ 3 | not }} {{ . }}", "[1,2]", { out: "false [1 2]" }],
  ["{{ range 3 }}{{ . }}{{ end }}", "null", { out: "012" }],
  ['{{ $x := "outer" }}{{ range .l }}{{ $x := . }}{{ $x }}{{ end }}{{ $x }}', '{"l":[1,2]}', { out: "12outer" }],
  [
    "{{ range $i, $a := .l }}{{ range $j, $b := $.l }}{{ $i }}{{ $j }} {{ end }}{{ end }}",
    '{"l":["a","b"]}',
    { out: "00 01 10 11 " },
  ],
  ["{{ range .l }}{{ $.name }}:{{ . }} {{ end }}", '{"l":[1,2],"name":"root"}', { out: "root:1 root:2 " }],
  ["{{ if false }}a{{- else -}}   b   {{- end }}|", "null", { out: "b|" }],
  ["{{ range .l }}{{ if gt . 1.0 }}{{ break }}{{ end }}{{ . }}{{ end }}done", '{"l":[1,2,3]}', { out: "1done" }],
  [
    "{{ range .outer }}[{{ range . }}{{ if eq . 2.0 }}{{ continue }}{{ end }}{{ . }}{{ end }}]{{ end }}",
    '{"outer":[[1,2,3],[2,4]]}',
    { out: "[13][4]" },
  ],
  ["a\n  {{- /* comment */ -}}\n  b", "null", { out: "ab" }],
  ["{{ with .a }}{{ with .b }}{{ . }}{{ end }}{{ end }}", '{"a":{"b":"nested"}}', { out: "nested" }],
  ["{{ $v := .missing }}{{ $v }}|{{ $v.x }}", "{}", { out: "<no value>|<no value>" }, "zero"],
  ['{{ print }}|{{ print nil }}|{{ print .missing }}|{{ print "a" .l }}', '{"l":[1]}', { out: "|<nil>|<nil>|a[1]" }],
  [
    '{{ printf "%v %v" .t .f }}|{{ printf "%t" .t }}|{{ printf "%5t|%-6v|" .f .t }}',
    '{"t":true,"f":false}',
    { out: "true false|true|false|true  |" },
  ],
  [
    '{{ printf "%q %q %+q %#q" "héllo\\u0000" "\\u00a0" "é" "back" }}',
    "null",
    { out: '"héllo\\x00" "\\u00a0" "\\u00e9" `back`' },
  ],
  [
    '{{ printf "%c%c %U %#U %x %X %#x %o %#o %b" 72 105 9731 9731 -255 3054 255 8 8 5 }}',
    "null",
    { out: "Hi U+2603 U+2603 '☃' -ff BEE 0xff 10 010 101" },
  ],
  [
    '{{ printf "%08.3f|%-8.2f|%+d|% d|%x" -3.5 2.0 5 5 "héllo" }}',
    "null",
    { out: "-003.500|2.00    |+5| 5|68c3a96c6c6f" },
  ],
  [
    '{{ printf "%.3g|%.10g|%g|%g|%G|%.0e" 123456.0 0.1 1e-5 123456789.0 1e-10 15.0 }}',
    "null",
    { out: "1.23e+05|0.1|1e-05|1.23456789e+08|1E-10|2e+01" },
  ],
  [
    '{{ printf "%v|%d|%s" .l .l .l }}',
    '{"l":[1,"x",true]}',
    { out: "[1 x true]|[%!d(float64=1) %!d(string=x) %!d(bool=true)]|[%!s(float64=1) x %!s(bool=true)]" },
  ],
  ['{{ printf "%6.2v|%.1s" 3.14159 "héllo" }}', "null", { out: "   3.1|h" }],
  ["{{ json .s }}", '{"s":"\\u0008\\u000c\\u001f\\u007f\\u2029 é 😀"}', { out: '"\\b\\f\\u001f\\u2029 é 😀"' }],
  ['{{ len .l | printf "%03d" }}', '{"l":[1,2]}', { out: "002" }],
  ['{{ index .m "a" "b" }}', '{"m":{"a":{"b":"deep"}}}', { out: "deep" }],
  [
    '{{ index .m "x" "b" }}',
    '{"m":{"a":1}}',
    { error: 'template: :1:3: executing "" at <index .m "x" "b">: error calling index: index of nil pointer' },
  ],
  ['{{ slice "héllo" 1 3 }}|{{ index "héllo" 1 }}|{{ len (slice .l 1 2) }}', '{"l":[1,2,3]}', { out: "é|195|1" }],
  [
    '{{ define "list" }}{{ range . }}<{{ template "item" . }}>{{ end }}{{ end }}{{ define "item" }}{{ .n }}{{ end }}{{ template "list" .items }}',
    '{"items":[{"n":1},{"n":2}]}',
    { out: "<1><2>" },
  ],
  [
    "{{ .a.b.c }}",
    '{"a":{"b":null}}',
    { error: 'template: :1:5: executing "" at <.a.b.c>: nil pointer evaluating interface {}.c' },
  ],
  ["{{ if .a }}{{ else }}{{ break }}{{ end }}", "null", { error: "template: :1: {{break}} outside {{range}}" }],
  [
    "{{ range $i, $v = .l }}{{ end }}",
    "null",
    { error: 'template: :1:18: executing "" at <.l>: undefined variable: $i' },
  ],
  ["{{ range .l }}{{ . }}{{ else }}{{ . }}{{ end }}", '{"l":[]}', { out: "map[l:[]]" }],
  [
    "{{ and }}",
    "null",
    { error: 'template: :1:3: executing "" at <and>: wrong number of args for and: want at least 1 got 0' },
  ],
  [
    "{{ .l.x }}",
    '{"l":[1]}',
    { error: 'template: :1:5: executing "" at <.l.x>: can\'t evaluate field x in type interface {}' },
  ],
  ['{{ 1 | printf "%d %d" 2 }}', "null", { out: "2 1" }],
  ['{{ "a" | len | printf "%d" }}', "null", { out: "1" }],
  [
    "{{ (.f) 1 }}",
    '{"f":1}',
    { error: 'template: :1:3: executing "" at <(.f) 1>: can\'t give argument to non-function .f' },
  ],
  [
    "{{ $x := 5 }}{{ $x 1 }}",
    "null",
    { error: 'template: :1:16: executing "" at <$x>: can\'t give argument to non-function $x' },
  ],
  ['{{ html "x" }} {{ js `a\\b` }}', "null", { out: "x a\\\\b" }],
  ["{{ range $k, $v := .m }}{{ $k }}{{ end }}", '{"m":{"é":1,"z":2,"Z":3,"10":4,"9":5}}', { out: "109Zzé" }],
  ["{{ 0x10 }} {{ 1e3 }} {{ 1.0 }} {{ -0 }} {{ +5 }} {{ 'a' }} {{ '\\n' }}", "null", { out: "16 1000 1 0 5 97 10" }],
  [
    "{{ eq 1.0 1 }}",
    "null",
    { error: 'template: :1:3: executing "" at <eq 1.0 1>: error calling eq: incompatible types for comparison' },
  ],
  ['{{ lt "a" "b" }} {{ lt "b" "a" }} {{ ge 2 2 }} {{ gt 2.5 2.4 }}', "null", { out: "true false true true" }],
  ["x{{ `a\r\nb` }}y", "null", { out: "xa\nby" }],
  ["line1\n{{ if .a }}\nline3\n{{ end }\n", "null", { error: 'template: :4: unexpected "}" in end' }],
  ["a\nb\n{{ .x | nosuch }}", "null", { error: 'template: :3: function "nosuch" not defined' }],
  ["{{ if .a }}\n{{ else }}\n{{ else }}\n{{ end }}", "null", { error: "template: :3: expected end; found {{else}}" }],
  [
    "x\n\n{{ range .l }}\n  {{ .y.z }}\n{{ end }}",
    '{"l":[{"y":3}]}',
    { error: 'template: :4:7: executing "" at <.y.z>: can\'t evaluate field z in type interface {}' },
  ],
  [
    '{{ define "t" }}\n{{ .nope.x }}{{ end }}\n{{ template "t" 1 }}',
    "null",
    { error: 'template: :2:8: executing "t" at <.nope.x>: can\'t evaluate field nope in type int' },
  ],
  ['{{ .a\n| printf "%s"\n}}', '{"a":"multi-line action"}', { out: "multi-line action" }],
  ['{{ "a\n" }}', "null", { error: "template: :1: unterminated quoted string" }],
  ["{{ $x := 1 }}{{ $x := 2 }}{{ $x }}", "null", { out: "2" }],
  ["{{ with $x := .a }}{{ $x }}{{ else }}none{{ end }}", '{"a":0}', { out: "none" }],
  ["{{ range $x := .l }}{{ $x }}{{ end }}{{ $x }}", '{"l":[1]}', { error: 'template: :1: undefined variable "$x"' }],
  ['{{ index . "key with space" }}', '{"key with space":"v"}', { out: "v" }],
  ["{{ .Method }}", '{"Method":"field"}', { out: "field" }],
  ['{{ printf "%s" .m }}', '{"m":{"k":[1,"x"]}}', { out: "map[k:[%!s(float64=1) x]]" }],
  ['{{- "a" -}}{{- "b" -}}', "null", { out: "ab" }],
  ["{{ . }}", '"top"', { out: "top" }],
  ["{{ .x }}", '"top"', { error: 'template: :1:3: executing "" at <.x>: can\'t evaluate field x in type string' }],
  ["{{ range . }}{{ . }}{{ end }}", '[1, 2.5, "s", true, null, [], {}]', { out: "12.5strue<no value>[]map[]" }],
  ["{{ not . }} {{ and . 1 }} {{ or . 1 }}", "null", { out: "true <no value> 1" }],
];

function run(template: string, data: string, missingKey: MissingKey = "default"): Expected {
  try {
    const t = parseTemplate(template, { funcs: { json: ollamaFuncs().json! }, missingKey });
    return { out: t.execute(JSON.parse(data)) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

describe("Go text/template semantics", () => {
  it.each(CASES)("%j with %s", (template, data, expected, missingKey) => {
    expect(run(template, data, missingKey)).toEqual(expected);
  });
});

// Behaviour of the Go releases Ollama is built with, newer than the oracle above.
describe("newer Go text/template features", () => {
  it.each([
    [
      "{{ range 3 }}{{ . }}{{ end }}|{{ range $i := 2 }}{{ $i }}{{ end }}|{{ range 0 }}x{{ else }}none{{ end }}",
      "012|01|none",
    ],
    ["{{ with .a }}a={{ . }}{{ else with .b }}b={{ . }}{{ else }}none{{ end }}", "b=2"],
    ["{{ with .x }}{{ else with .y }}{{ else with .z }}z{{ end }}", "z"],
  ])("%j", (template, expected) => {
    expect(run(template, JSON.stringify({ a: 0, b: 2, z: 1 }))).toEqual({ out: expected });
  });
});
