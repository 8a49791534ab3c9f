/**
 * Lets a child Node process of a test `require` the library's TypeScript sources directly: each `.ts`
 * file is transpiled on load (no type-checking; `npm run typecheck` does that), as ts-jest does in the
 * test process. Used as `node -r ./test/helpers/ts-register.js script.ts`.
 */
'use strict';
const fs = require('node:fs');
const ts = require('typescript');

require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, sourceMap: false },
  });
  module._compile(out.outputText, filename);
};
