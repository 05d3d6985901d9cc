// RivetKit's own JavaScript client (npm `rivetkit` 2.3.x, encoding "json") against a rivet-actors
// Python server. Usage: RIVET_URL=http://127.0.0.1:6420 node interop.mjs
// Prints one "ok <check>" line per passed check and exits 0; any failure exits 1 with a message.
import assert from "node:assert/strict";
import { createClient } from "rivetkit/client";

const endpoint = process.env.RIVET_URL;
if (!endpoint) {
	console.error("set RIVET_URL to the server's URL");
	process.exit(2);
}

const withTimeout = (promise, ms, what) =>
	Promise.race([
		promise,
		new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)),
	]);

async function main() {
	const client = createClient({ endpoint, encoding: "json", disableMetadataLookup: false });
	const room = `room-${Date.now()}`;

	// 1. get-or-create by key, call an action (by name: /gateway/{name}/action/...?rvt-*)
	const counter = client.counter.getOrCreate([room, "js"]);
	assert.equal(await counter.increment(5), 5);
	assert.equal(await counter.increment(2), 7);
	assert.equal(await counter.getCount(), 7);
	console.log("ok action by key");

	// plain data round trip: nested objects, big ints, bytes
	const echoed = await counter.echo({ a: [1, "two", null, true], big: 2n ** 60n, bytes: new Uint8Array([1, 2, 3]) });
	assert.deepEqual(echoed.a, [1, "two", null, true]);
	assert.equal(echoed.big, 2n ** 60n);
	assert.deepEqual(Array.from(echoed.bytes), [1, 2, 3]);
	console.log("ok plain data");

	// resolve to an id (PUT /actors), then call by id (/gateway/{id}/action/...)
	const actorId = await counter.resolve();
	assert.equal(typeof actorId, "string");
	const byId = client.counter.getForId(actorId);
	assert.equal(await byId.getCount(), 7);
	console.log("ok action by id");

	// 2. an error with group and code
	try {
		await counter.fail("too many");
		assert.fail("fail() should have thrown");
	} catch (err) {
		assert.equal(err.group, "user");
		assert.equal(err.code, "limit_exceeded");
		assert.equal(err.message, "too many");
		assert.deepEqual(err.metadata, { limit: 3 });
	}
	try {
		await client.counter.get(["does-not-exist", room]).getCount();
		assert.fail("get() of a missing actor should have thrown");
	} catch (err) {
		assert.equal(err.group, "actor");
		assert.equal(err.code, "not_found");
	}
	console.log("ok errors");

	// 3. a connection: actions over the socket and a broadcast event
	const conn = counter.connect();
	const received = new Promise((resolve) => conn.on("newCount", (count) => resolve(count)));
	await withTimeout(
		new Promise((resolve, reject) => {
			conn.onOpen(resolve);
			conn.onError(reject);
		}),
		10_000,
		"connection open",
	);
	assert.equal(await withTimeout(conn.increment(3), 10_000, "action over connection"), 10);
	assert.equal(await withTimeout(received, 10_000, "broadcast event"), 10);
	try {
		await withTimeout(conn.fail("over socket"), 10_000, "error over connection");
		assert.fail("fail() over the connection should have thrown");
	} catch (err) {
		assert.equal(err.group, "user");
		assert.equal(err.code, "limit_exceeded");
	}
	// a broadcast caused by another caller reaches the connection
	const second = new Promise((resolve) => conn.once("newCount", (count) => resolve(count)));
	await counter.increment(1);
	assert.equal(await withTimeout(second, 10_000, "broadcast from an HTTP call"), 11);
	await conn.dispose();
	console.log("ok connection and events");

	// conn params travel with the connection
	const withParams = counter.connect({ token: "secret" });
	await withTimeout(new Promise((resolve, reject) => {
		withParams.onOpen(resolve);
		withParams.onError(reject);
	}), 10_000, "connection with params");
	assert.equal(await withParams.whoami(), "secret");
	await withParams.dispose();
	console.log("ok conn params");

	await client.dispose();
}

main().then(
	() => {
		console.log("interop: all checks passed");
		process.exit(0);
	},
	(err) => {
		console.error("interop: FAILED:", err?.stack ?? err);
		process.exit(1);
	},
);
