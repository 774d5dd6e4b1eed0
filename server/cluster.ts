/**
 * `vidrecall serve --processes N`: N server processes on one port (node:cluster).
 *
 * Why: a /similar request is ~0.3 ms of express and ~0.25 ms of HNSW search.
 * In one process the search runs on worker threads, and on a 2-core machine
 * the hop there and back (a message each way, a thread woken each time) cost
 * more than the search. N processes, each searching on its own event loop,
 * need no hop: the kernel spreads the connections over them.
 *
 * The primary serves nothing. It starts the processes, relays the messages
 * between them (src/service/peers.ts says what they tell each other), answers
 * /metrics scrapes with every process's metrics summed (prom-client's
 * AggregatorRegistry), replaces a process that dies, and on SIGTERM/SIGINT
 * tells each to shut down gracefully. Process 0 is the leader: it owns the
 * admin jobs and the index updates; the others hand those calls to it.
 */
import cluster, { type Worker } from "node:cluster";
import { AggregatorRegistry } from "prom-client";
import type { Registry } from "prom-client";
import { fromWireError, toWireError, type LeaderCall, type PeerEvent, type Peers, type WireError } from "../src/service/peers.js";

/** What a worker tells the primary once it listens: the lines the primary prints for the cluster. */
export interface ReadyInfo {
  url: string;
  lines: string[];
}

type FromWorker =
  | { type: "vidrecall:ready"; info: ReadyInfo }
  | { type: "vidrecall:call"; id: number; method: string; args: unknown[] }
  | { type: "vidrecall:reply"; id: number; value?: unknown; error?: WireError }
  | { type: "vidrecall:notify"; id: number; event: PeerEvent }
  | { type: "vidrecall:ack"; id: number }
  | { type: "vidrecall:metrics"; id: number };

type ToWorker =
  | { type: "vidrecall:call"; id: number; method: string; args: unknown[] }
  | { type: "vidrecall:reply"; id: number; value?: unknown; error?: WireError }
  | { type: "vidrecall:event"; id: number; event: PeerEvent }
  | { type: "vidrecall:notified"; id: number }
  | { type: "vidrecall:metrics"; id: number; text?: string; error?: string }
  | { type: "vidrecall:shutdown" };

const SLOT_ENV = "VIDRECALL_CLUSTER_SLOT";
/** Processes that die after the cluster is up are replaced, up to this many times. */
const MAX_RESPAWNS = 10;

/** A server process's side of the cluster. */
export interface ClusterLink extends Peers {
  /** Process 0: owns jobs and index updates. */
  readonly leader: boolean;
  readonly slot: number;
  /** Runs a call on the leader (a leader calls its own handler). */
  call: LeaderCall;
  /** The leader's handler for calls. */
  serveCalls(handler: (method: string, args: unknown[]) => Promise<unknown>): void;
  /** What to do when another process notifies this one; the notifier waits for it. */
  onEvent(handler: (event: PeerEvent) => Promise<void>): void;
  /** Metrics of every process, summed (Prometheus text). */
  clusterMetrics(): Promise<string>;
  /** Makes this process's registry the one the primary aggregates. */
  exposeMetrics(registry: Registry): void;
  /** Tells the primary this process listens. */
  ready(info: ReadyInfo): void;
  /** The primary asks for a shutdown, or is gone. */
  onShutdown(handler: () => void): void;
}

/** In a cluster worker: the link to the primary and, through it, the other processes. */
export function joinCluster(): ClusterLink {
  if (!cluster.isWorker) throw new Error("joinCluster: not a cluster worker");
  const slot = Number(process.env[SLOT_ENV] ?? "0");
  const leader = slot === 0;
  let seq = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let callHandler: ((method: string, args: unknown[]) => Promise<unknown>) | undefined;
  let eventHandler: ((e: PeerEvent) => Promise<void>) | undefined;
  let shutdownHandler: (() => void) | undefined;
  const send = (m: FromWorker) => process.send!(m);
  const ask = <T>(m: (id: number) => FromWorker): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = ++seq;
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      send(m(id));
    });
  const settle = (id: number, value: unknown, error?: Error) => {
    const w = waiting.get(id);
    waiting.delete(id);
    if (error) w?.reject(error);
    else w?.resolve(value);
  };
  process.on("message", (m: ToWorker) => {
    switch (m?.type) {
      case "vidrecall:reply":
        settle(m.id, m.value, m.error && fromWireError(m.error));
        return;
      case "vidrecall:notified":
        settle(m.id, undefined);
        return;
      case "vidrecall:metrics":
        settle(m.id, m.text, m.error !== undefined ? new Error(`cluster metrics: ${m.error}`) : undefined);
        return;
      case "vidrecall:call": {
        const run = callHandler ? callHandler(m.method, m.args) : Promise.reject(new Error("this process is not the cluster leader"));
        run.then(
          (value) => send({ type: "vidrecall:reply", id: m.id, value }),
          (err: unknown) => send({ type: "vidrecall:reply", id: m.id, error: toWireError(err) }),
        );
        return;
      }
      case "vidrecall:event": {
        // Acknowledged even when applying failed: the notifier must not hang; the watcher's next tick catches up.
        const done = () => send({ type: "vidrecall:ack", id: m.id });
        (eventHandler ? eventHandler(m.event) : Promise.resolve()).then(done, done);
        return;
      }
      case "vidrecall:shutdown":
        shutdownHandler?.();
        return;
    }
  });
  // The primary is gone (killed): nothing routes to this process any more.
  process.once("disconnect", () => shutdownHandler?.());
  return {
    leader,
    slot,
    call: ((method: string, ...args: unknown[]) => {
      if (leader) {
        if (!callHandler) return Promise.reject(new Error("the cluster leader is not ready"));
        return callHandler(method, args);
      }
      return ask((id) => ({ type: "vidrecall:call", id, method, args }));
    }) as LeaderCall,
    notify: (event) => ask<void>((id) => ({ type: "vidrecall:notify", id, event })),
    serveCalls(handler) {
      callHandler = handler;
    },
    onEvent(handler) {
      eventHandler = handler;
    },
    clusterMetrics: () => ask<string>((id) => ({ type: "vidrecall:metrics", id })),
    exposeMetrics(registry) {
      // Constructing one installs prom-client's worker-side listener; setRegistries names what it reports.
      new AggregatorRegistry();
      AggregatorRegistry.setRegistries([registry]);
    },
    ready(info) {
      send({ type: "vidrecall:ready", info });
    },
    onShutdown(handler) {
      shutdownHandler = handler;
    },
  };
}

export interface PrimaryOptions {
  processes: number;
  log: (line: string) => void;
  /** All processes listen (the first time): the primary prints where. */
  onReady: (info: ReadyInfo) => void;
  /** How long the processes get to shut down before they are killed. */
  shutdownTimeoutMs: number;
}

export interface Primary {
  /** Resolves with the exit code once every process has exited. */
  exited: Promise<number>;
  /** Graceful shutdown of every process. */
  stop(reason: string): void;
}

/** In the primary: starts the server processes (this same command, re-run by node:cluster) and relays between them. */
export function startPrimary(o: PrimaryOptions): Primary {
  if (!cluster.isPrimary) throw new Error("startPrimary: not the cluster primary");
  const aggregator = new AggregatorRegistry();
  const slots: (Worker | undefined)[] = new Array(o.processes).fill(undefined);
  const readySlots = new Set<number>();
  let up = false;
  let stopping = false;
  let respawns = 0;
  let exitCode = 0;
  let seq = 0;
  /** Calls relayed to the leader: primary id → caller and its id. */
  const calls = new Map<number, { from: Worker; id: number }>();
  /** Notifications being relayed: primary id → notifier, its id, and who has not acknowledged. */
  const notices = new Map<number, { from: Worker; id: number; pending: Set<Worker> }>();
  let resolveExited!: (code: number) => void;
  const exited = new Promise<number>((r) => (resolveExited = r));

  const send = (w: Worker, m: ToWorker) => {
    if (w.isConnected()) w.send(m);
  };
  const slotOf = (w: Worker) => slots.indexOf(w);
  const live = () => slots.filter((w): w is Worker => w !== undefined && w.isConnected());

  const fork = (slot: number) => {
    const w = cluster.fork({ [SLOT_ENV]: String(slot) });
    slots[slot] = w;
    w.on("message", (m: FromWorker) => onMessage(w, m));
  };

  const finishNotice = (pid: number) => {
    const n = notices.get(pid);
    if (!n || n.pending.size > 0) return;
    notices.delete(pid);
    send(n.from, { type: "vidrecall:notified", id: n.id });
  };

  function onMessage(w: Worker, m: FromWorker): void {
    switch (m?.type) {
      case "vidrecall:ready": {
        readySlots.add(slotOf(w));
        if (!up && readySlots.size === o.processes) {
          up = true;
          o.onReady(m.info);
        }
        return;
      }
      case "vidrecall:call": {
        const leader = slots[0];
        if (!leader?.isConnected() || !readySlots.has(0)) {
          send(w, { type: "vidrecall:reply", id: m.id, error: { status: 503, code: "unavailable", message: "the cluster leader (process 0, which runs jobs and index updates) is restarting; retry" } });
          return;
        }
        const pid = ++seq;
        calls.set(pid, { from: w, id: m.id });
        send(leader, { type: "vidrecall:call", id: pid, method: m.method, args: m.args });
        return;
      }
      case "vidrecall:reply": {
        const c = calls.get(m.id);
        calls.delete(m.id);
        if (c) send(c.from, { type: "vidrecall:reply", id: c.id, value: m.value, error: m.error });
        return;
      }
      case "vidrecall:notify": {
        const pid = ++seq;
        const pending = new Set(live().filter((x) => x !== w));
        notices.set(pid, { from: w, id: m.id, pending });
        for (const x of pending) send(x, { type: "vidrecall:event", id: pid, event: m.event });
        finishNotice(pid);
        return;
      }
      case "vidrecall:ack": {
        notices.get(m.id)?.pending.delete(w);
        finishNotice(m.id);
        return;
      }
      case "vidrecall:metrics":
        aggregator.clusterMetrics().then(
          (text) => send(w, { type: "vidrecall:metrics", id: m.id, text }),
          (err: Error) => send(w, { type: "vidrecall:metrics", id: m.id, error: err.message }),
        );
        return;
    }
  }

  cluster.on("exit", (w, code, signal) => {
    const slot = slotOf(w);
    if (slot >= 0) slots[slot] = undefined;
    readySlots.delete(slot);
    // A process that is gone acknowledges nothing: stop waiting for it; calls it was running fail.
    for (const pid of [...notices.keys()]) {
      notices.get(pid)!.pending.delete(w);
      finishNotice(pid);
    }
    if (slot === 0) {
      for (const [pid, c] of calls) {
        calls.delete(pid);
        send(c.from, { type: "vidrecall:reply", id: c.id, error: { status: 503, code: "unavailable", message: "the cluster leader exited while running this call; retry" } });
      }
    }
    if (stopping) {
      if (slots.every((s) => s === undefined)) resolveExited(exitCode);
      return;
    }
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (!up) {
      // A process that cannot start (port in use, bad model) would fail again: stop the cluster.
      o.log(`server process ${slot} exited during startup (${how}): stopping`);
      exitCode = 1;
      stop("startup failed");
      return;
    }
    if (respawns >= MAX_RESPAWNS) {
      o.log(`server process ${slot} exited (${how}) after ${respawns} restarts: stopping`);
      exitCode = 1;
      stop("too many restarts");
      return;
    }
    respawns++;
    o.log(`server process ${slot} exited (${how}): starting a new one`);
    fork(slot);
  });

  function stop(reason: string): void {
    if (stopping) return;
    stopping = true;
    o.log(`${reason}: shutting down ${live().length} server processes (finishing requests in flight)`);
    for (const w of live()) send(w, { type: "vidrecall:shutdown" });
    if (slots.every((s) => s === undefined)) resolveExited(exitCode);
    const kill = setTimeout(() => {
      for (const w of slots) w?.process.kill("SIGKILL");
      exitCode = 1;
      resolveExited(exitCode);
    }, o.shutdownTimeoutMs + 30_000);
    kill.unref();
  }

  for (let i = 0; i < o.processes; i++) fork(i);
  return { exited, stop };
}
