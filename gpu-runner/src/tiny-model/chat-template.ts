/**
 * ChatML with Hermes/Qwen-style tools, written for the built-in models' `tokenizer.chat_template`. With `tools`
 * it puts their JSON signatures into the system turn and asks for `<tool_call>` blocks; assistant tool calls
 * are rendered back in that form and `tool` messages become `<tool_response>` blocks in a user turn.
 * Function arguments may arrive as an object (Ollama) or a JSON string (OpenAI); both render as JSON.
 */
export const TINY_CHAT_TEMPLATE = [
  "{%- if tools %}",
  "{{- '<|im_start|>system\\n' }}",
  "{%- if messages and messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}",
  "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n' }}",
  "{{- 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}",
  "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}",
  "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments ' }}",
  "{{- 'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n' }}",
  '{{- \'{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n\' }}',
  "{%- elif messages and messages[0].role == 'system' %}",
  "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}",
  "{%- endif %}",
  "{%- for message in messages %}",
  "{%- if message.role == 'system' and loop.first %}",
  "{%- elif message.role == 'assistant' and message.tool_calls %}",
  "{{- '<|im_start|>assistant' }}",
  "{%- if message.content %}{{- '\\n' + message.content }}{%- endif %}",
  "{%- for call in message.tool_calls %}",
  "{%- if call.function is defined %}{%- set fn = call.function %}{%- else %}{%- set fn = call %}{%- endif %}",
  '{{- \'\\n<tool_call>\\n{"name": "\' + fn.name + \'", "arguments": \' }}',
  "{%- if fn.arguments is string %}{{- fn.arguments }}{%- else %}{{- fn.arguments | tojson }}{%- endif %}",
  "{{- '}\\n</tool_call>' }}",
  "{%- endfor %}",
  "{{- '<|im_end|>\\n' }}",
  "{%- elif message.role == 'tool' %}",
  "{{- '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}",
  "{%- else %}",
  "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}",
  "{%- endif %}",
  "{%- endfor %}",
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
].join("");
