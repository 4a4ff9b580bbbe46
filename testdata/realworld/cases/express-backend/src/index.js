const app = require("./server");
const { port } = require("./config");

const server = app.listen(port, () => console.log("Webserver is ready on port " + port));

// PID 1 in a container: leave on SIGINT/SIGTERM ourselves.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
