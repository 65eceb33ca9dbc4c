// The Jinja interpreter against Jinja2 3.1.6: expressions, filters, tests, methods, statements and
// whitespace control (expected strings printed by Jinja2 in transformers' chat-template environment:
// sandboxed, trim_blocks, lstrip_blocks, loopcontrols), plus its errors.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "ir/Error.h"
#include "runtime/chat/JinjaTemplate.h"
#include "runtime/chat/JinjaValue.h"

namespace pagedc::jinja {
namespace {

Value chatVariables() {
  return Value::fromJson(nlohmann::ordered_json::parse(R"({"messages": [{"role": "user", "content": "hi"}]})"));
}

std::string render(const std::string& source, const Value& variables = chatVariables(), const LexerOptions& options = {}) {
  return Template(source, "t.jinja", options).render(variables);
}

// The message of the pagedc::Error that rendering (or parsing) throws, or "" if none.
std::string renderError(const std::string& source, const Value& variables = chatVariables()) {
  try {
    Template(source, "t.jinja").render(variables);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

struct ParityCase {
  const char* source;
  const char* expected;  // what Jinja2 3.1.6 renders
};

// Rendered with messages=[{"role": "user", "content": "hi"}].
const ParityCase kParityCases[] = {
    {"a  {% if true %}  {% endif %}x",
     "a    x"},
    {"a\n  {% if true %}  {% endif %}x",
     "a\n  x"},
    {"a\n  {# c #}\nx",
     "a\nx"},
    {"a\n  {{ 1 }}\nx",
     "a\n  1\nx"},
    {"{% for i in [1,2] %}{% if i == 2 %}[{{ x }}]{% endif %}{% set x = i %}{% endfor %}",
     "[]"},
    {"{% set x = 5 %}{% for i in [1,2] %}[{{ x }}]{% set x = i %}{% endfor %}{{x}}",
     "[5][5]5"},
    {"x\n",
     "x"},
    {"x\ny\nz",
     "x\ny\nz"},
    {"{{ 1.0 }} {{ 1e20 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1/3 }} {{ -0.0 }}",
     "1.0 1e+20 1e+16 1000000000000000.0 0.0001 1e-05 0.3333333333333333 -0.0"},
    {"{{ [1, 'a', \"b'c\", none, true, 1.5, {'k': [1]}] }} {{ (1,) }} {{ () }}",
     "[1, 'a', \"b'c\", None, True, 1.5, {'k': [1]}] (1,) ()"},
    {"{% if true %}\n  a\n{% endif %}\n",
     "  a\n"},
    {"  {%+ if true %}x{% endif +%}\ny",
     "  x\ny"},
    {"{{ 'a' ~ none ~ undefinedvar }}",
     "aNone"},
    {"{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7 / 2 }} {{ 6 / 2 }}",
     "3 -4 2 1024 0.5 3.5 3.0"},
    {"{{ 'abc'[::-1] }} {{ [1,2,3][1:] }} {{ 'héllo'|length }}",
     "cba [2, 3] 5"},
    {"{{ {'a': 1, 'b': 2}|tojson }} {{ {'a': [1,2]}|tojson(indent=2) }} {{ 'é<>'|tojson }}",
     "{\"a\": 1, \"b\": 2} {\n  \"a\": [\n    1,\n    2\n  ]\n} \"é<>\""},
    {"{{ namespace(a=1) }}",
     "<Namespace {'a': 1}>"},
    {"{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }}",
     "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c']"},
    {"{{ loop }}",
     ""},
    {"{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }}-{{loop.revindex}};{% endfor %}",
     "-2-3;1-3-2;2--1;"},
    {"  {% if true %}x{% endif %}",
     "x"},
    {"\t {# c #}\ny",
     "y"},
    {"a {#- c -#}\n b",
     "ab"},
    {"a\n  {%- if true -%}\n  x\n  {%- endif %}\ny",
     "axy"},
    {"{% raw %}{{ x }}{% endraw %}\n",
     "{{ x }}"},
    {"a\n  {% raw %}\n{{ x }}{% endraw %}\nb",
     "a\n\n{{ x }}b"},
    {"{{ ['a\\nb', 'it\\'s', '\\x01é😀\\\\'] }}",
     "['a\\nb', \"it's\", '\\x01é😀\\\\']"},
    {"{{ {'a': 1}.get('b') }} {{ {'a': 1}.get('b', 2) }} {{ {'a':1}['b'] is defined }}",
     "None 2 False"},
    {"{{ [1.0, 2.5e-7]|tojson }} {{ 'a\"\\n\\u0001'|tojson }}",
     "[1.0, 2.5e-07] \"a\\\"\\n\\u0001\""},
    {"{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }}",
     "True True True True"},
    {"{% set x %}  hi\n{% endset %}[{{ x }}]",
     "[  hi\n]"},
    {"{% macro f(a, b='B') %}{{a}}{{b}}{{ varargs }}{{ kwargs }}{% endmacro %}{{ f(1) }}{{ f(1, 2, 3) }}{{ f(1, c=4) }}",
     "1B(){}12(3,){}1B(){'c': 4}"},
    {"{{ 'hello world'|title }} {{ 'hELLO'|capitalize }} {{ ' x '|trim }} {{ 'xxaxx'|trim('x') }}",
     "Hello World Hello x a"},
    {"{{ [3,1,2]|sort }} {{ [3,1,2]|sort(reverse=true) }} {{ ['b','A','a']|sort }} {{ ['b','A','a']|unique|list }}",
     "[1, 2, 3] [3, 2, 1] ['A', 'a', 'b'] ['b', 'A']"},
    {"{{ [1,2,3]|map('string')|join(',') }} {{ [{'a':1},{'a':2}]|map(attribute='a')|list }} {{ [1,2,3]|select('odd')|list }}",
     "1,2,3 [1, 2] [1, 3]"},
    {"{{ 3.7|int }} {{ '42'|int }} {{ 'x'|int }} {{ '3.5'|float }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ 3|round }}",
     "3 42 0 3.5 2.57 2.0 3"},
    {"{{ 'a b  c'|wordcount }} {{ 'l1\\nl2\\n\\nl3'|indent(2) }} {{ 'l1\\nl2'|indent(2, true) }}",
     "3 l1\n  l2\n\n  l3   l1\n  l2"},
    {"{{ {'b':1,'a':2}|items|list }} {{ {'b':1,'a':2}|dictsort }}",
     "[('b', 1), ('a', 2)] [('a', 2), ('b', 1)]"},
    {"{{ none|default('d') }} {{ undefinedv|default('d') }} {{ ''|default('d', true) }} {{ none|d('x', true) }}",
     "None d d x"},
    {"{{ [1,2,3]|first }} {{ [1,2,3]|last }} {{ 'abc'|first }} {{ []|first }}",
     "1 3 a "},
    {"{{ [1,2,3]|reverse|list }} {{ 'abc'|reverse }} {{ [1,2,3]|sum }} {{ [1,5,2]|max }}",
     "[3, 2, 1] cba 6 5"},
    {"{{ 'abc'|list }} {{ 5|string + 'x' }} {{ '%s-%d'|format('a', 3) }} {{ '{}-{x}'.format(1, x=2) }}",
     "['a', 'b', 'c'] 5x a-3 1-2"},
    {"{{ 1 is number }} {{ true is number }} {{ true is integer }} {{ 1.0 is float }} {{ 'a' is iterable }} {{ {} is mapping }} {{ [] is sequence }} {{ 'a' is sequence }} {{ none is none }} {{ range is callable }}",
     "True True False True True True True True True True"},
    {"{{ dict(a=1, b=2) }} {{ 'abc'.startswith(('x','a')) }} {{ 'a.b.c'.rsplit('.', 1) }}",
     "{'a': 1, 'b': 2} True ['a.b', 'c']"},
    {"{% for k, v in {'a': 1, 'b': 2}.items() %}{{k}}={{v}} {% endfor %}",
     "a=1 b=2 "},
    {"{% for x in [1,2,3] if x > 1 %}{{ loop.index }}/{{ loop.length }} {% else %}none{% endfor %}",
     "1/2 2/2 "},
    {"{% for x in [] %}x{% else %}empty{% endfor %}",
     "empty"},
    {"{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{x}}{% endfor %}",
     "013"},
    {"{{ 'a' if false }}|{{ 1 if true else 2 }}",
     "|1"},
    {"{{ none|tojson }} {{ true|tojson }} {{ (1,2)|tojson }}",
     "null true [1, 2]"},
    {"{{ 'abc'.upper() }} {{ 'ÉCOLE straße'.lower() }} {{ 'straße'.upper() }} {{ 'éa'|title }}",
     "ABC école straße STRASSE Éa"},
    {"{{ -2|abs }} {{ not true }} {{ 1 + 2 * 3 }} {{ 2 ** 3 ** 2 }} {{ 'a' ~ (1 + 2) }} {{ -2 ** 2 }}",
     "2 False 7 64 a3 4"},
    {"{{ 10 is divisibleby 5 }} {{ 3 is odd }} {{ 'a' is in 'abc' }} {{ 1 is eq 1 }} {{ 1 is equalto 1 }} {{ 1 is not none }}",
     "True True True True True True"},
    {"{{ [1, 2] ~ 'x' }} {{ 1.5e300 * 1e10 }} {{ x is not defined and true }} {{ not x is defined }}",
     "[1, 2]x inf True True"},
    {"{% set a, b = 1, 2 %}{{ a }}{{ b }} {{ (1, 2) }} {{ 1, 2 }}",
     "12 (1, 2) (1, 2)"},
    {"{% set ns = namespace(x=1, y=[]) %}{% set ns.x = ns.x + 1 %}{{ ns.x }}{{ ns.y }}",
     "2[]"},
    {"{% with a = 1 %}{{ a }}{% endwith %}{{ a }}",
     "1"},
    {"{% filter upper %}abc{% endfilter %}",
     "ABC"},
    {"{{ [1,2,3][-1] }} {{ 'abc'[1] }} {{ [1,2,3][5] }} {{ {'a':{'b':1}}.a.b }} {{ [[1]].0.0 }}",
     "3 b  1 1"},
    {"{{ 'a' * 3 }} {{ [1] * 2 }} {{ [1] + [2] }} {{ 3 - 1.5 }} {{ 10 % 3 }} {{ 5.5 // 2 }} {{ 2 ** 0.5 }}",
     "aaa [1, 1] [1, 2] 1.5 1 2.0 1.4142135623730951"},
    {"{{ 'x'|e }} {{ '<a&\"\\'>'|e }} {{ '<a>'|safe }}",
     "x &lt;a&amp;&#34;&#39;&gt; <a>"},
    {"{{ [1,2,3,4,5]|batch(2)|list }} {{ 'ab'|center(6) }}|",
     "[[1, 2], [3, 4], [5]]   ab  |"},
    {"{{ {'a':1}|length }} {{ 'abc'|count }} {{ x|length }}",
     "1 3 0"},
    {"{{ messages[0]['content'] }}",
     "hi"},
    {"{% if messages %}{% endif %}{{ true and 1 }} {{ 0 or 'x' }} {{ none or none }} {{ '' and 1 }}",
     "1 x None "},
    {"{{ [{'a':2,'n':'x'},{'a':1,'n':'y'}]|sort(attribute='a')|map(attribute='n')|join }} {{ [{'a':2},{'b':1}]|selectattr('a')|list }} {{ [{'a':2},{'a':1}]|selectattr('a', 'equalto', 1)|list }} {{ [{'r':'u'},{'r':'a'}]|rejectattr('r','eq','u')|list }}",
     "yx [{'a': 2}] [{'a': 1}] [{'r': 'a'}]"},
    {"{{ 'a\\u2028b'.split() }} {{ ' \\u3000x\\xa0'.strip() }}|",
     "['a', 'b'] x|"},
    {"{{ 'Hello'.find('l') }} {{ 'hello'.count('l') }} {{ '-'.join(['a','b']) }} {{ 'ab'.replace('a', 'c') }} {{ 'aaa'|replace('a','b',2) }}",
     "2 2 a-b cb bba"},
    {"{{ x|default }}|{{ undefined_x is undefined }}|{{ {'a': none}.a is none }}",
     "|True|True"},
    {"{{ 3 > 2 > 1 }} {{ 1 < 2 < 1 }}",
     "True False"},
    {"{% for a in [[1,2],[3,4]] %}{% for b in a %}{{ loop.depth }}{{ b }}{% endfor %}{% endfor %}",
     "11121314"},
    {"{% macro m() %}[{{ caller() }}]{% endmacro %}{% call m() %}inner{% endcall %}",
     "[inner]"},
    {"{{ 1.5|string }} {{ 100000000000000000000.0 }} {{ 1e-7 }} {{ 123456789.123456789 }} {{ 0.1 + 0.2 }} {{ 1e300*1e300 }} {{ -1e300*1e300 }}",
     "1.5 1e+20 1e-07 123456789.12345679 0.30000000000000004 inf -inf"},
    {"{{ 'abc'|upper|lower }} {{ '  x'|length }} {{ 5|float }} {{ '5'|int + 1 }} {{ true|int }} {{ 1.9|int }} {{ -1.9|int }}",
     "abc 3 5.0 6 1 1 -1"},
    {"{% set x = [1,2] %}{% for y in x %}{{ loop.cycle('a','b') }}{% endfor %}",
     "ab"},
    {"{{ 'ab'[5:] }}|{{ [1,2,3][-2:] }} {{ [1,2,3,4][::2] }} {{ [1,2,3][:-1] }}",
     "|[2, 3] [1, 3] [1, 2]"},
    {"a\n  {% if true %}\n    x\n  {% endif %}\nb",
     "a\n    x\nb"},
    {"{% for i in [1, 2] %}\n  {{ i }}\n{% endfor %}\n",
     "  1\n  2\n"},
    {"{%- for i in [1, 2] -%}\n  {{ i }}\n{%- endfor -%}\n|",
     "12|"},
    {"x   {{- 'y' -}}   z",
     "xyz"},
    {"  {#- comment -#}  \n  text",
     "text"},
    {"line1\n    {% set x = 1 %}\nline2",
     "line1\nline2"},
    {"{% if true %}a{% endif %}\n\nb",
     "a\nb"},
    {"    {%+ if true %}kept{% endif %}",
     "    kept"},
    {"{% if true +%}\nkept-newline{% endif %}",
     "\nkept-newline"},
    {"{% raw %}  {{ raw }} {% endraw %}after",
     "  {{ raw }} after"},
    {"{{ 'a' }}\n{{ 'b' }}\n",
     "a\nb"},
    {"\n\n{% if true %}\n\n{% endif %}\n\n",
     "\n\n\n"},
    {"a\r\nb\rc\n",
     "a\nb\nc"},
    {"{{ [1, 2, 3] | map('string') | join }} {{ 'x' ~ [1] }} {{ {'a': 'b'} ~ '' }}",
     "123 x[1] {'a': 'b'}"},
    {"{{ 'abc'.upper() + 'DEF'.lower() }} {{ 'a-b_c d'.title() }} {{ 'hello'.capitalize() }}",
     "ABCdef A-B_C D Hello"},
    {"{{ ' x '.strip() }}|{{ 'abcba'.strip('a') }}|{{ 'abc'.lstrip('a') }}|{{ 'abc'.rstrip('c') }}",
     "x|bcb|bc|ab"},
    {"{{ 'a  b c'.split(' ') }} {{ 'a b c d'.rsplit(None, 2) }} {{ 'a,b'.split(',', 0) }}",
     "['a', '', 'b', 'c'] ['a b', 'c', 'd'] ['a,b']"},
    {"{{ 'hello'.replace('l', 'L') }} {{ 'hello'.replace('', '-') }} {{ 'héllo'.find('l') }} {{ 'héllo'.index('o') }}",
     "heLLo -h-e-l-l-o- 2 4"},
    {"{{ '{0}-{1}-{0}'.format('a', 'b') }} {{ '{{literal}} {}'.format(1) }} {{ '{!r}'.format('q') }}",
     "a-b-a {literal} 1 'q'"},
    {"{{ 'x'.join(['1', '2', '3']) }} {{ ''.join('abc') }} {{ 'abc'.startswith('b', 1) }} {{ 'abc'.endswith('b', 0, 2) }}",
     "1x2x3 abc True True"},
    {"{{ '123'.isdigit() }} {{ 'abc'.isalpha() }} {{ ' \t'.isspace() }} {{ 'abc'.islower() }} {{ 'ABC'.isupper() }} {{ ''.isdigit() }}",
     "True True True True True False"},
    {"{{ 'ab'.center(6, '*') }} {{ 'ab'.ljust(4, '.') }}| {{ 'ab'.rjust(4) }} {{ '42'.zfill(5) }} {{ 'a=b=c'.partition('=') }} {{ 'a=b=c'.rpartition('=') }}",
     "**ab** ab..|   ab 00042 ('a', '=', 'b=c') ('a=b', '=', 'c')"},
    {"{{ {'a': 1}.items() | list }} {{ {'a': 1, 'b': 2}.keys() | list }} {{ {'a': 1}.values() | list }} {{ [1, 2, 1].count(1) }} {{ [1, 2, 3].index(2) }}",
     "[('a', 1)] ['a', 'b'] [1] 2 1"},
    {"{{ 5 / 2 }} {{ 4 / 2 }} {{ 5.0 // 2 }} {{ -5 % 3 }} {{ 5 % -3 }} {{ -5.5 % 2 }} {{ 2 ** -2 }} {{ 0.1 * 3 }} {{ 1e300 * 1e300 }}",
     "2.5 2.0 2.0 1 -1 0.5 0.25 0.30000000000000004 inf"},
    {"{{ 1 < 2 and 2 < 3 }} {{ not 1 == 2 }} {{ 1 in [1] and 'a' not in 'bc' }} {{ none is none }} {{ 1 is not string }}",
     "True True True True True"},
    {"{{ x is defined }} {{ x | default(5) }} {{ x is undefined }} {{ (x or 'alt') }} {{ x ~ 'y' }}",
     "False 5 True alt y"},
    {"{% set d = {'k': {'n': [10, 20]}} %}{{ d.k.n[1] }} {{ d['k']['n'][-1] }} {{ d.k.missing is defined }} {{ d.get('k').n.0 }}",
     "20 20 False 10"},
    {"{{ 42 is integer }} {{ 4.2 is float }} {{ 'x' is string }} {{ [1] is sequence }} {{ {} is mapping }} {{ none is none }} {{ true is boolean }} {{ 1 is boolean }} {{ true is true }} {{ false is false }} {{ 0 is false }}",
     "True True True True True True True False True True False"},
    {"{{ 6 is divisibleby 3 }} {{ 7 is divisibleby(3) }} {{ 3 is odd }} {{ 4 is even }} {{ 'a' is lower }} {{ 'A' is upper }} {{ 2 is gt 1 }} {{ 2 is lt 1 }} {{ 2 is ge 2 }} {{ 2 is le 1 }} {{ 2 is ne 1 }} {{ 1 is sameas 1 }} {{ none is sameas none }}",
     "True False True True True True True False True False True True True"},
    {"{{ 1 is in [1, 2] }} {{ 'k' is in {'k': 1} }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ 'nope' is filter }} {{ dict is callable }} {{ 'x' is callable }}",
     "True True True True False True False"},
    {"{% set xs = [{'n': 'b', 'k': 1}, {'n': 'a', 'k': 2}, {'n': 'B', 'k': 3}] %}{{ xs | sort(attribute='n') | map(attribute='k') | list }} {{ xs | sort(attribute='n', case_sensitive=true) | map(attribute='k') | list }} {{ xs | unique(attribute='n') | map(attribute='k') | list }} {{ xs | max(attribute='k') }} {{ xs | selectattr('k', 'gt', 1) | map(attribute='n') | join }}",
     "[2, 1, 3] [3, 2, 1] [1, 2] {'n': 'B', 'k': 3} aB"},
    {"{{ [3, 2, 1] | sort | first }} {{ [[2, 'b'], [1, 'a']] | sort | first }} {{ ['b', 'a'] | sort | join }}",
     "1 [1, 'a'] ab"},
    {"{% macro m(a, b=a ~ '!', c=none) %}{{ a }}{{ b }}{{ c }}{% endmacro %}{{ m('x') }} {{ m('x', c=3) }} {{ m(b='B', a='A') }}",
     "xx!None xx!3 ABNone"},
    {"{% macro outer() %}{% macro inner() %}in{% endmacro %}[{{ inner() }}]{% endmacro %}{{ outer() }}",
     "[in]"},
    {"{% macro list_item(x) %}<{{ x }}>{% endmacro %}{{ [1, 2] | map('string') | join }}{% for i in [1, 2] %}{{ list_item(i) }}{% endfor %}",
     "12<1><2>"},
    {"{% set ns = namespace(a=1, b='x') %}{% set ns.a = ns.a + 1 %}{% set ns.c = [ns.a] %}{{ ns.a }}{{ ns.b }}{{ ns.c }}",
     "2x[2]"},
    {"{% set ns = namespace({'a': 1}) %}{{ ns.a }}",
     "1"},
    {"{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}{% for i in [1] %}{% set x = 3 %}{% endfor %}{{ x }}",
     "22"},
    {"{% for i in [1, 2, 3] %}{% for j in [1, 2] %}{% if j == 2 %}{% break %}{% endif %}{{ i }}{{ j }} {% endfor %}{% endfor %}",
     "11 21 31 "},
    {"{% for i in range(5) if i != 2 %}{{ loop.index }}:{{ i }}{{ ',' if not loop.last }}{% endfor %}",
     "1:0,2:1,3:3,4:4"},
    {"{% for a, b in {'x': 1, 'y': 2} | dictsort %}{{ a }}{{ b }}{% endfor %} {% for item in {'x': 1} | items %}{{ item }}{% endfor %}",
     "x1y2 ('x', 1)"},
    {"{% for x in 'ab' %}{{ loop.first }}{{ loop.last }}{{ loop.revindex0 }}{% endfor %}",
     "TrueFalse1FalseTrue0"},
    {"{{ '%5.2f|%-4s|%03d|%x|%%' | format(3.14159, 'ab', 7, 255) }} {{ '%s and %s' % ('a', 'b') }} {{ '%r' | format('q') }}",
     " 3.14|ab  |007|ff|% a and b 'q'"},
    {"{{ [1, [2, 3]] | tojson }} {{ {'a': {'b': 1}} | tojson(indent=1) }} {{ 'é' | tojson }} {{ 1.5 | tojson }} {{ 10 | tojson }} {{ false | tojson }}",
     "[1, [2, 3]] {\n \"a\": {\n  \"b\": 1\n }\n} \"é\" 1.5 10 false"},
    {"{{ (1, 2) }} {{ (1, 2)[0] }} {{ (1,) + (2,) }} {{ [1, 2][::-1] }} {{ 'abcdef'[-3:-1] }} {{ 'abcdef'[10:] }} {{ [1, 2, 3][::-2] }}",
     "(1, 2) 1 (1, 2) [2, 1] de  [3, 1]"},
    {"{{ 'x' if 1 else 'y' }} {{ 'x' if 0 else 'y' if 1 else 'z' }} {{ [1, 2] if false }}|",
     "x y |"},
    {"{{ -3 | abs }} {{ -(2) }} {{ +3 }} {{ not none }} {{ - 1.5 }}",
     "3 -2 3 True -1.5"},
    {"{{ 0.1 }} {{ 1.5e-10 }} {{ 12345678.9 }} {{ 1e21 }} {{ 123456789012345678.0 }} {{ 5e-324 }} {{ 1.7976931348623157e308 }} {{ 3.0 * 1.1 }}",
     "0.1 1.5e-10 12345678.9 1e+21 1.2345678901234568e+17 5e-324 1.7976931348623157e+308 3.3000000000000003"},
    {"{{ 'ß'.upper() }} {{ 'ΑΒΓ'.lower() }} {{ 'привет'.upper() }} {{ 'İ'.lower() | length }} {{ 'Ǆ'|length }}",
     "SS αβγ ПРИВЕТ 2 1"},
    {"{% filter trim | upper %}   padded text   {% endfilter %}|{% set b | replace('a', 'o') %}banana{% endset %}{{ b }}",
     "PADDED TEXT|bonono"},
    {"{% with a = 2 %}{% with b = a * 2 %}{{ a }}{{ b }}{% endwith %}{% endwith %}",
     "24"},
    {"{% macro w() %}({{ caller('arg') }}){% endmacro %}{% call(x) w() %}got {{ x }}{% endcall %}",
     "(got arg)"},
    {"{{ dict(a=1) }} {{ dict({'b': 2}, c=3) }} {{ dict([('k', 'v')]) }} {{ namespace() }}",
     "{'a': 1} {'b': 2, 'c': 3} {'k': 'v'} <Namespace {}>"},
    {"{{ range(0) | list }} {{ range(-3) | list }} {{ range(10, 0, -3) | list }} {{ range(3) | length }}",
     "[] [] [10, 7, 4, 1] 3"},
    {"{{ [1, 2, 3] | batch(2, 'x') | list }} {{ [] | sum }} {{ [1.5, 2] | sum }} {{ ['a', 'b'] | sum(start='') if false else 'skip' }}",
     "[[1, 2], [3, 'x']] 0 3.5 skip"},
    {"{{ 'The quick brown fox' | wordcount }} {{ 'héllo wörld, 你好' | wordcount }} {{ 'a\\nb' }} {{ \"it's\" }} {{ 'say \"x\"' }}",
     "4 3 a\nb it's say \"x\""},
    {"{{ 'Ab' < 'a' }} {{ 'a' < 'aa' }} {{ [1] == [1.0] }} {{ {'a': 1} == {'a': 1} }} {{ (1, 2) == [1, 2] }} {{ none == none }} {{ 'a' != 'a' }}",
     "True True True True False True False"},
    {"{{ messages | length }} {{ messages[0].content | upper }} {{ messages | map(attribute='role') | first }}",
     "1 HI user"},
};

TEST(JinjaTest, MatchesJinja2) {
  for (const ParityCase& c : kParityCases) {
    SCOPED_TRACE(c.source);
    std::string out;
    ASSERT_NO_THROW(out = render(c.source));
    EXPECT_EQ(out, c.expected);
  }
}

// Plain Jinja2 defaults (no trim_blocks / lstrip_blocks) and keep_trailing_newline, as
// jinja2.Environment() renders them.
TEST(JinjaTest, WhitespaceOptions) {
  LexerOptions plain;
  plain.trimBlocks = false;
  plain.lstripBlocks = false;
  EXPECT_EQ(render("a\n  {% if true %}\n    x\n  {% endif %}\nb", chatVariables(), plain), "a\n  \n    x\n  \nb");
  EXPECT_EQ(render("{% for i in [1, 2] %}\n  {{ i }}\n{% endfor %}\n", chatVariables(), plain), "\n  1\n\n  2\n");
  EXPECT_EQ(render("  {# c #}\nx\n", chatVariables(), plain), "  \nx");
  EXPECT_EQ(render("{% if true %}\nkeep{% endif %}\n\n", chatVariables(), plain), "\nkeep\n");
  LexerOptions keep;
  keep.keepTrailingNewline = true;
  keep.lstripBlocks = false;
  EXPECT_EQ(render("{% if true %}\nx\n{% endif %}\n", chatVariables(), keep), "x\n");
}

TEST(JinjaTest, RuntimeErrorsNameSourceAndLine) {
  // Jinja2 raises these too (UndefinedError, SecurityError, TypeError, ZeroDivisionError).
  struct ErrorCase {
    const char* source;
    const char* fragment;
  };
  const ErrorCase cases[] = {
      {"{{ foo.bar }}", "t.jinja, line 1: 'foo' is undefined"},
      {"a\n\n{{ x.y.z }}", "t.jinja, line 3: 'x' is undefined"},
      {"{{ undefinedvar + 1 }}", "line 1: 'undefinedvar' is undefined"},
      {"{% set l = [1] %}\n{% set _ = l.append(2) %}", "line 2: access to attribute 'append' of 'list' object is unsafe."},
      {"{{ {'a': 1}.update({'b': 2}) }}", "access to attribute 'update' of 'dict' object is unsafe."},
      {"{{ 'x' in none }}", "argument of type 'NoneType' is not iterable"},
      {"{{ 'a' ~ 1 + 2 }}", "can only concatenate str (not \"int\") to str"},
      {"{{ 10 / 0 }}", "division by zero"},
      {"{{ 1 < 'a' }}", "'<' not supported between instances of 'int' and 'str'"},
      {"{% for x in 5 %}{% endfor %}", "'int' object is not iterable"},
      {"{{ messages[0].content.missing.deeper }}", "'str object' has no attribute 'missing'"},
      {"{% set a, b = [1] %}", "not enough values to unpack (expected 2, got 1)"},
      {"{{ undefined_fn() }}", "'undefined_fn' is undefined"},
      {"{{ 3() }}", "'int' object is not callable"},
      {"{{ x | nosuchfilter }}", "no filter named 'nosuchfilter'"},
      {"{{ x is nosuchtest }}", "no test named 'nosuchtest'"},
      {"{{ range(1000000) | length }}", "Range too big"},
      {"{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "maximum macro recursion depth exceeded in 'f'"},
      {"{% set ns = namespace(_private=1) %}", "underscore-prefixed attributes"},
      {"{% set x = 1 %}{% set x.attr = 2 %}", "can only assign attributes of namespace objects"},
      {"{{ none | tojson }}{{ undefined_value | tojson }}", "Object of type Undefined is not JSON serializable"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.source);
    EXPECT_NE(renderError(c.source).find(c.fragment), std::string::npos) << renderError(c.source);
  }
}

TEST(JinjaTest, RaiseExceptionReportsMessageAndLine) {
  const std::string source =
      "{%- for m in messages %}\n"
      "  {%- if m.role == 'user' %}\n"
      "    {{- raise_exception('Users may not speak: ' ~ m.content) }}\n"
      "  {%- endif %}\n"
      "{%- endfor %}";
  EXPECT_EQ(renderError(source), "t.jinja, line 3: Users may not speak: hi");
  // Inside a macro, the line is the macro body's.
  EXPECT_EQ(renderError("{% macro fail() %}\n{{ raise_exception('in macro') }}\n{% endmacro %}\n\n{{ fail() }}"),
            "t.jinja, line 2: in macro");
}

TEST(JinjaTest, SyntaxErrorsNameSourceAndLine) {
  struct ErrorCase {
    const char* source;
    const char* fragment;
  };
  const ErrorCase cases[] = {
      {"{% if true %}\nno end", "t.jinja, line 1: syntax error: unexpected end of template, expected 'elif', 'else', 'endif'"},
      {"a\n{% endfor %}", "t.jinja, line 2: syntax error: unexpected 'endfor'"},
      {"\n\n{% frobnicate %}", "t.jinja, line 3: syntax error: unknown tag 'frobnicate'"},
      {"{{ 1 + }}", "line 1: syntax error: unexpected end of expression"},
      {"{{ 'unterminated }}", "line 1: unterminated string literal"},
      {"x\n{{ a b }}", "line 2: syntax error: expected end of tag, got 'b'"},
      {"{% for x in y %}{% else %}{% else %}{% endfor %}", "syntax error"},
      {"{{ x", "unexpected end of template, expected '}}'"},
      {"{# open comment", "unterminated comment"},
      {"{% include 'other.jinja' %}", "tag 'include' is not supported"},
      {"{% break %}", "'break' outside of a loop"},
      {"{{ f(a=1, 2) }}", "positional argument after a keyword argument"},
      {"{% raw %}never closed", "missing {% endraw %}"},
      {"{{ 1 is == 1 }}", "syntax error"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.source);
    std::string message;
    try {
      Template t(c.source, "t.jinja");
    } catch (const Error& e) {
      message = e.what();
    }
    EXPECT_NE(message.find(c.fragment), std::string::npos) << message;
  }
}

TEST(JinjaTest, PythonReprOfValues) {
  EXPECT_EQ(formatPythonFloat(1.0), "1.0");
  EXPECT_EQ(formatPythonFloat(0.1), "0.1");
  EXPECT_EQ(formatPythonFloat(1e16), "1e+16");
  EXPECT_EQ(formatPythonFloat(1e15), "1000000000000000.0");
  EXPECT_EQ(formatPythonFloat(1e-5), "1e-05");
  EXPECT_EQ(formatPythonFloat(0.0001), "0.0001");
  EXPECT_EQ(formatPythonFloat(-2.5e-7), "-2.5e-07");
  EXPECT_EQ(formatPythonFloat(-0.0), "-0.0");
  EXPECT_EQ(formatPythonFloat(1.0 / 0.0), "inf");
  EXPECT_EQ(pythonStringRepr("it's"), "\"it's\"");
  EXPECT_EQ(pythonStringRepr("both ' and \""), "'both \\' and \"'");
  EXPECT_EQ(pythonStringRepr("\x01\n\xc3\xa9"), "'\\x01\\n\xc3\xa9'");
  Value v = Value::fromJson(nlohmann::ordered_json::parse(R"({"b": [1, 2.0, null, true, "s"], "a": {}})"));
  EXPECT_EQ(v.str(), "{'b': [1, 2.0, None, True, 's'], 'a': {}}");
  JsonDumpOptions o;
  EXPECT_EQ(dumpJson(v, o), R"({"b": [1, 2.0, null, true, "s"], "a": {}})");
}

TEST(JinjaTest, VariablesAreGlobals) {
  Value vars = Value::fromJson(nlohmann::ordered_json::parse(R"({"name": "Ada", "items": [3, 1, 2], "flag": false})"));
  EXPECT_EQ(render("{{ name }}:{{ items | sort | join(',') }}:{{ flag }}:{{ missing }}", vars), "Ada:1,2,3:False:");
  // A template-level set shadows a variable without changing it for the caller.
  EXPECT_EQ(render("{% set name = name | upper %}{{ name }}", vars), "ADA");
  EXPECT_EQ(vars.dictObject()->find(std::string_view("name"))->str(), "Ada");
}

TEST(JinjaTest, RenderIsThreadSafe) {
  const Template t(
      "{%- set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + m.content | length %}{% endfor -%}"
      "{{ ns.n }}:{{ messages | map(attribute='role') | join(',') }}",
      "t.jinja");
  std::vector<std::thread> threads;
  std::vector<std::string> results(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      std::string content(static_cast<std::size_t>(i + 1), 'x');
      Value vars = Value::fromJson(nlohmann::ordered_json{{"messages", {{{"role", "user"}, {"content", content}}, {{"role", "assistant"}, {"content", content}}}}});
      for (int k = 0; k < 200; ++k) results[static_cast<std::size_t>(i)] = t.render(vars);
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(results[static_cast<std::size_t>(i)], std::to_string(2 * (i + 1)) + ":user,assistant");
}

}  // namespace
}  // namespace pagedc::jinja
