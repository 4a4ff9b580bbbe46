// A todo list in memory, in the shape of docker-nodejs-sample's src/index.js.
const express = require('express');
const { v4: uuid } = require('uuid');

const app = express();
const items = [];

app.use(express.json());
app.use(express.static(__dirname + '/static'));

app.get('/items', (req, res) => res.json(items));
app.post('/items', (req, res) => {
    const item = { id: uuid(), name: req.body.name, completed: false };
    items.push(item);
    res.status(201).json(item);
});

const server = app.listen(3000, () => console.log('Listening on port 3000'));

const gracefulShutdown = () => server.close(() => process.exit());
process.on('SIGINT', gracefulShutdown);
process.on('SIGTERM', gracefulShutdown);
process.on('SIGUSR2', gracefulShutdown); // Sent by nodemon
