// The package's TypeScript types: types/usage.ts uses the API as a user
// would (and misuses it under @ts-expect-error); tsc must accept it.
import { test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

test('the .d.ts files type a user program and refuse misuse', () => {
  execFileSync(process.execPath, [join(here, 'node_modules/typescript/bin/tsc'), '-p', join(here, 'types/tsconfig.json')], { stdio: 'inherit' });
});
