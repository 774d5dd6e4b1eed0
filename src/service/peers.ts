/**
 * The other processes of a `serve --processes N` cluster, as the services see
 * them. Every process serves every route from the same store and index
 * directory; what lives only in one process's memory is kept in step here:
 *
 * - changes a process makes to its runtime (tombstones of deleted videos,
 *   changed categories) are told to the others, and the request that made
 *   them is answered only once every process has applied them;
 * - jobs and index updates have one owner, the leader process: the others
 *   hand those calls to it (one reindex at a time across the cluster, job ids
 *   valid everywhere), and when the leader's runtime moves to a new model or
 *   index it tells the others to refresh before it answers.
 *
 * A single process has no peers (NO_PEERS) and calls its services directly.
 */
import type { AdminService, RetrainOptions } from "./adminService.js";
import { ServiceError } from "./errors.js";
import type { IndexRun, IndexUpdater } from "./indexUpdater.js";
import type { JobView } from "./jobService.js";
import type { ModelWatcher } from "./modelWatcher.js";
import type { ServingRuntime } from "./runtime.js";

export type PeerEvent =
  /** Videos deleted (add) or stored again (remove) since the loaded index version. */
  | { type: "tombstones"; add: string[]; remove: string[] }
  /** A video's category changed: reload the index's category filter. */
  | { type: "categories" }
  /** A new model or index version is on disk: load it now, not at the next watcher tick. */
  | { type: "refresh" };

export interface Peers {
  /** Tells every other process; resolves once each has applied it. */
  notify(event: PeerEvent): Promise<void>;
}

export const NO_PEERS: Peers = { notify: () => Promise.resolve() };

/** What a process does when a peer tells it something. */
export async function applyPeerEvent(runtime: ServingRuntime, watcher: ModelWatcher, event: PeerEvent): Promise<void> {
  switch (event.type) {
    case "tombstones":
      for (const id of event.add) if (runtime.index?.has(id)) runtime.tombstones.add(id);
      for (const id of event.remove) runtime.tombstones.delete(id);
      return;
    case "categories":
      runtime.markCategoriesChanged();
      return;
    case "refresh":
      await watcher.checkNow();
      return;
  }
}

/** The admin operations the routes call: the AdminService itself, or the leader's through a RemoteAdmin. */
export interface AdminOperations {
  reindex(options: { incremental: boolean }): JobView | Promise<JobView>;
  retrain(options: RetrainOptions): JobView | Promise<JobView>;
  job(id: string): JobView | Promise<JobView>;
  jobs(): JobView[] | Promise<JobView[]>;
}

/** Coalesced index updates: the IndexUpdater itself, or the leader's through a RemoteIndexUpdater. */
export interface IndexUpdates {
  /** Joins the next update; resolves once it is done and loaded by every process. */
  request(): Promise<IndexRun>;
  /** Like request(), without waiting (failures are logged). */
  schedule(): void;
  /** Stops an update in progress (shutdown). */
  stop(): void;
}

/** Calls a process hands to the leader, by name. */
export interface LeaderCalls {
  "admin.reindex": (options: { incremental: boolean }) => JobView;
  "admin.retrain": (options: RetrainOptions) => JobView;
  "admin.job": (id: string) => JobView;
  "admin.jobs": () => JobView[];
  "index.request": () => Promise<IndexRun>;
}
export type LeaderMethod = keyof LeaderCalls;
export type LeaderCall = <M extends LeaderMethod>(method: M, ...args: Parameters<LeaderCalls[M]>) => Promise<Awaited<ReturnType<LeaderCalls[M]>>>;

/** The leader's side: runs a call on its own services. */
export function leaderHandler(admin: AdminService, updater: IndexUpdater): (method: string, args: unknown[]) => Promise<unknown> {
  const calls: LeaderCalls = {
    "admin.reindex": (o) => admin.reindex(o),
    "admin.retrain": (o) => admin.retrain(o),
    "admin.job": (id) => admin.job(id),
    "admin.jobs": () => admin.jobs(),
    "index.request": () => updater.request(),
  };
  return async (method, args) => {
    if (!Object.hasOwn(calls, method)) throw new Error(`unknown cluster call "${method}"`);
    return (calls[method as LeaderMethod] as (...a: unknown[]) => unknown)(...args);
  };
}

export class RemoteAdmin implements AdminOperations {
  constructor(private readonly call: LeaderCall) {}
  reindex(options: { incremental: boolean }): Promise<JobView> {
    return this.call("admin.reindex", options);
  }
  retrain(options: RetrainOptions): Promise<JobView> {
    return this.call("admin.retrain", options);
  }
  job(id: string): Promise<JobView> {
    return this.call("admin.job", id);
  }
  jobs(): Promise<JobView[]> {
    return this.call("admin.jobs");
  }
}

export class RemoteIndexUpdater implements IndexUpdates {
  constructor(
    private readonly call: LeaderCall,
    private readonly onError: (err: Error) => void,
  ) {}
  request(): Promise<IndexRun> {
    return this.call("index.request");
  }
  schedule(): void {
    this.request().catch(this.onError);
  }
  stop(): void {
    // The leader owns the update; it stops it at its own shutdown.
  }
}

/** An error as it crosses a process boundary: a ServiceError keeps its status, code and details. */
export interface WireError {
  message: string;
  status?: number;
  code?: string;
  details?: ServiceError["details"];
}

export function toWireError(err: unknown): WireError {
  if (err instanceof ServiceError) return { message: err.message, status: err.status, code: err.code, details: err.details };
  return { message: err instanceof Error ? err.message : String(err) };
}

export function fromWireError(w: WireError): Error {
  if (w.status !== undefined && w.code !== undefined) return new ServiceError(w.status, w.code, w.message, w.details);
  return new Error(w.message);
}
