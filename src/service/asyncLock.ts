/** A FIFO mutex for async work (one index build at a time in this process). */
export class AsyncLock {
  private tail: Promise<void> = Promise.resolve();
  private held = 0;

  /** Resolves with a release function once every earlier holder has released. */
  acquire(): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const previous = this.tail;
    this.tail = previous.then(() => mine);
    return previous.then(() => {
      this.held++;
      let done = false;
      return () => {
        if (done) return;
        done = true;
        this.held--;
        release();
      };
    });
  }

  get busy(): boolean {
    return this.held > 0;
  }
}
