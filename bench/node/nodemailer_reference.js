// The nodemailer reference for the fast-sink benchmark: its pooled SMTP transport sends one
// prebuilt message N times over C connections. Usage: node nodemailer_reference.js PORT N C FILE
const fs = require("fs");
const nodemailer = require("nodemailer");
const [port, total, conns, file] = process.argv.slice(2);
const raw = fs.readFileSync(file);
const transport = nodemailer.createTransport({
  host: "127.0.0.1", port: Number(port), secure: false, ignoreTLS: true,
  pool: true, maxConnections: Number(conns), maxMessages: Infinity,
});
let sent = 0, failed = 0, started = 0;
const t0 = process.hrtime.bigint();
function pump() {
  while (started < Number(total) && started - sent - failed < Number(conns) * 2) {
    started++;
    transport.sendMail({ envelope: { from: "a@x.test", to: ["b@y.test"] }, raw })
      .then(() => { sent++; done(); }, () => { failed++; done(); });
  }
}
function done() {
  if (sent + failed === Number(total)) {
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(Math.round(sent / secs));
    transport.close();
    process.exit(failed ? 1 : 0);
  }
  pump();
}
pump();
