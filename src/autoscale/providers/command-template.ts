// Command templates such as "node examples/app/server.mjs --port {port}": split into words first
// (single and double quotes group words), then each {placeholder} is replaced inside its word. So
// a value can never add or split arguments, and no shell ever sees the command; an operator who
// wants a shell writes `sh -c '...'` explicitly. Values are checked against a strict character set.

import { ProviderError } from './provider.ts';

/** Characters allowed in a substituted value (ids like "web/12/launch/0", versions, hosts). */
const SAFE_VALUE = /^[A-Za-z0-9._:/@+=-]*$/;

export function splitCommand(template: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (const char of template) {
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
      else word += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += char;
      inWord = true;
    }
  }
  if (quote !== undefined) throw new ProviderError('CONCORD_E_PROVIDER_BAD_TEMPLATE', `command '${template}' has an unclosed ${quote} quote`);
  if (inWord) words.push(word);
  if (words.length === 0) throw new ProviderError('CONCORD_E_PROVIDER_BAD_TEMPLATE', 'the command is empty');
  return words;
}

/** The command's argv with every {name} replaced by values[name]; an unknown placeholder is an error. */
export function renderCommand(template: string, values: Record<string, string>): string[] {
  for (const [name, value] of Object.entries(values)) {
    if (!SAFE_VALUE.test(value)) throw new ProviderError('CONCORD_E_PROVIDER_BAD_TEMPLATE', `the value of {${name}} ('${value}') has characters a command argument may not get`);
  }
  return splitCommand(template).map((word) =>
    word.replace(/\{([A-Za-z]+)\}/g, (_, name: string) => {
      const value = values[name];
      if (value === undefined) {
        throw new ProviderError('CONCORD_E_PROVIDER_BAD_TEMPLATE', `command '${template}' uses {${name}}; known placeholders: ${Object.keys(values).map((k) => `{${k}}`).join(' ')}`);
      }
      return value;
    }),
  );
}
