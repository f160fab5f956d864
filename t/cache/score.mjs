// Scores a result file of http-cache-tests' cli.mjs: a test passed when its result is true.  Tests without
// a kind (or of kind "required") are required; "optimal" ones optional; "check" ones only informational.
// Tests marked browser_only test a private (browser) cache, which a proxy is not: left out, as the
// suite's own runner leaves them out for shared caches.
import fs from 'fs'
const dir = process.env.HCT_DIR
const tests = (await import(dir + '/tests/index.mjs')).default
tests.push((await import(dir + '/tests/surrogate-control.mjs')).default)
const results = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const count = { required: [0, 0], optimal: [0, 0], check: [0, 0] }
const failed = []
for (const suite of tests) {
  for (const test of suite.tests) {
    if (test.browser_only) continue
    const kind = !test.kind || test.kind === 'required' ? 'required' : test.kind
    count[kind][1]++
    if (results[test.id] === true) count[kind][0]++
    else if (kind === 'required') failed.push(test.id)
  }
}
console.log(JSON.stringify({ count, failed }))
