// Binds the suite's origin to loopback: its server.mjs listens on every address.
import http from 'http'
const listen = http.Server.prototype.listen
http.Server.prototype.listen = function (port, ...rest) {
  return listen.call(this, port, '127.0.0.1', ...rest)
}
await import(process.env.HCT_DIR + '/server/server.mjs')
