// HEALTHCHECK: exit 0 when GET /healthz answers 200.
const http = require("http");

const req = http.request(
  { host: "localhost", port: process.env.PORT || 80, path: "/healthz", timeout: 2000 },
  (res) => {
    console.info("STATUS: " + res.statusCode);
    process.exit(res.statusCode === 200 ? 0 : 1);
  }
);
req.on("error", (err) => {
  console.error("ERROR", err.message);
  process.exit(1);
});
req.end();
