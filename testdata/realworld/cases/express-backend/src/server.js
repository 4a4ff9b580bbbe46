const express = require("express");
const morgan = require("morgan");

const app = express();
app.use(morgan("common"));

app.get("/", (req, res) => {
  res.json({ message: "Hello Docker World!", node: process.version, env: process.env.NODE_ENV });
});

app.get("/healthz", (req, res) => {
  res.send("I am happy and healthy\n");
});

module.exports = app;
