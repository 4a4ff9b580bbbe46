module.exports = { port: process.env.PORT || 8080 };
