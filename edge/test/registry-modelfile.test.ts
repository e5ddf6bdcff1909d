import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ModelfileCommand, parseModelfile, renderCommand } from "../src/store/modelfile";

const LLAMA_TEMPLATE =
  "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>";

// Cases carried over from Ollama's parser tests: [input, expected commands].
const parses: [string, ModelfileCommand[]][] = [
  [
    `\nFROM model1\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nTEMPLATE """${LLAMA_TEMPLATE}"""    \n`,
    [
      { name: "model", args: "model1" },
      { name: "adapter", args: "adapter1" },
      { name: "license", args: "MIT" },
      { name: "param1", args: "value1" },
      { name: "template", args: LLAMA_TEMPLATE },
    ],
  ],
  [
    'FROM "     model 1"\nLICENSE "MIT       "',
    [
      { name: "model", args: "     model 1" },
      { name: "license", args: "MIT       " },
    ],
  ],
  ["FROM     FOOO BAR    ", [{ name: "model", args: "FOOO BAR" }]],
  ["from llama3:7b-instruct-q4_K_M", [{ name: "model", args: "llama3:7b-instruct-q4_K_M" }]],
  [
    "PARAMETER what the \nFROM lemons make lemonade ",
    [
      { name: "what", args: "the" },
      { name: "model", args: "lemons make lemonade" },
    ],
  ],
  [
    "FROM foo\nMESSAGE system You are a parser.\nMESSAGE user Hey there!",
    [
      { name: "model", args: "foo" },
      { name: "message", args: "system: You are a parser." },
      { name: "message", args: "user: Hey there!" },
    ],
  ],
  [
    'FROM foo\nMESSAGE system """\nmultiline\n"""\n\t',
    [
      { name: "model", args: "foo" },
      { name: "message", args: "system: \nmultiline\n" },
    ],
  ],
  [
    'FROM foo\nSYSTEM """\nThis is a\nmultiline system."""',
    [
      { name: "model", args: "foo" },
      { name: "system", args: "\nThis is a\nmultiline system." },
    ],
  ],
  [
    'FROM foo\nSYSTEM """\nwith "quotes".\n"""\n',
    [
      { name: "model", args: "foo" },
      { name: "system", args: '\nwith "quotes".\n' },
    ],
  ],
  [
    'FROM foo\nSYSTEM """"""\n',
    [
      { name: "model", args: "foo" },
      { name: "system", args: "" },
    ],
  ],
  [
    'FROM foo\nSYSTEM ""\n',
    [
      { name: "model", args: "foo" },
      { name: "system", args: "" },
    ],
  ],
  [
    'FROM foo\nSYSTEM "\'"\n',
    [
      { name: "model", args: "foo" },
      { name: "system", args: "'" },
    ],
  ],
  [
    'FROM foo\nPARAMETER stop "### User: "',
    [
      { name: "model", args: "foo" },
      { name: "stop", args: "### User: " },
    ],
  ],
  [
    "FROM foo\nPARAMETER stop ### User: ",
    [
      { name: "model", args: "foo" },
      { name: "stop", args: "### User:" },
    ],
  ],
  [
    'FROM foo\nPARAMETER stop """### User:\n"""',
    [
      { name: "model", args: "foo" },
      { name: "stop", args: "### User:\n" },
    ],
  ],
  ["# comment\nFROM foo\n\t", [{ name: "model", args: "foo" }]],
  [
    "\uFEFFFROM foo\r\nSYSTEM hi\r\n",
    [
      { name: "model", args: "foo" },
      { name: "system", args: "hi" },
    ],
  ],
  [
    "FROM foo\nSYSTEM héllo wörld ✓",
    [
      { name: "model", args: "foo" },
      { name: "system", args: "héllo wörld ✓" },
    ],
  ],
];

const failures: [string, string | RegExp][] = [
  ["", "no FROM line"],
  ["PARAMETER param1 value1", "no FROM line"],
  ["\nFROM foo\nPARAMETER param1\n", /^unexpected EOF/],
  ["\nFROM foo\nBADCOMMAND param1 value1\n", /^\(line 3\): command must be one of/],
  [
    "\nFROM foo\nMESSAGE badguy I'm a bad guy!\n",
    '(line 3): message role must be one of "system", "user", or "assistant"',
  ],
  ["\nFROM foo\nMESSAGE system\n", /^unexpected EOF/],
  ["\nFROM foo\nMESSAGE system", "unexpected EOF"],
  ['\nFROM foo\nSYSTEM """This is a multiline system.""\n', "unexpected EOF"],
  ['\nFROM foo\nSYSTEM "\n', "unexpected EOF"],
  ["FROM", "unexpected EOF"],
];

describe("Modelfile parser (Ollama's rules)", () => {
  it.each(parses)("parses %j", (input, expected) => {
    expect(parseModelfile(input)).toEqual(expected);
  });

  it.each(failures)("refuses %j", (input, message) => {
    expect(() => parseModelfile(input)).toThrow(message);
  });

  it("renders values back so that they parse to the same text", () => {
    const text = fc.string({
      unit: fc.constantFrom(..."abcXYZ019 .,:;!?<>|{}()-_'\n".split("")),
      maxLength: 40,
    });
    fc.assert(
      fc.property(text, (s) => {
        const rendered = renderCommand({ name: "system", args: s });
        const parsed = parseModelfile(`FROM foo\n${rendered}\n`);
        // Unquoted values lose edge newlines and inner runs at line ends, as in Ollama: only compare what quote() keeps.
        const expected = s.includes("\n") || s.startsWith(" ") || s.endsWith(" ") ? s : s.trim();
        if (s.trim() === "" && !s.includes("\n") && !s.startsWith(" ")) return; // empty value: Ollama cannot render it
        expect(parsed[1]).toEqual({ name: "system", args: expected });
      }),
    );
  });

  it.each([
    [{ name: "message", args: "user: hi there" }, "MESSAGE user hi there"],
    [{ name: "temperature", args: "0.5" }, "PARAMETER temperature 0.5"],
    [{ name: "template", args: "a\nb" }, 'TEMPLATE "a\nb"'],
    [{ name: "system", args: 'say "x"\n' }, 'SYSTEM """say "x"\n"""'],
  ])("renders %j as %j", (cmd, line) => {
    expect(renderCommand(cmd)).toBe(line);
  });
});
