'use strict';
// Command-line options of the bench's Node tools: util.parseArgs (strict: an unknown option
// is an error) plus the options that must be given.
const { parseArgs } = require('util');

function parseOptions(argv, options, required) {
  const { values } = parseArgs({ args: argv.slice(2), options });
  for (const name of required) {
    if (!values[name]) throw new Error(`--${name} is required`);
  }
  return values;
}

module.exports = { parseOptions };
