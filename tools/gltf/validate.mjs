// node validate.mjs <file>...: the Khronos glTF validator on each file; prints one JSON
// array of {file, errors: [{code, pointer, message}], warnings: [...], numErrors,
// numWarnings}. One process for every file of an asset (start-up is ~0.1 s).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import validator from 'gltf-validator';

const results = [];
for (const file of process.argv.slice(2)) {
  const data = new Uint8Array(await readFile(file));
  const report = await validator.validateBytes(data, {
    uri: path.basename(file),
    maxIssues: 200,
    // External resources of a multi-file input are read from beside it, never fetched.
    externalResourceFunction: (uri) => readFile(path.join(path.dirname(file),
      decodeURIComponent(uri))).then((b) => new Uint8Array(b)),
  });
  results.push({
    file,
    numErrors: report.issues.numErrors,
    numWarnings: report.issues.numWarnings,
    errors: report.issues.messages.filter((m) => m.severity === 0)
      .map((m) => ({ code: m.code, pointer: m.pointer, message: m.message })),
    warnings: report.issues.messages.filter((m) => m.severity === 1)
      .map((m) => ({ code: m.code, pointer: m.pointer, message: m.message })),
  });
}
process.stdout.write(JSON.stringify(results));
