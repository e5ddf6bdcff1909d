/**
 * A bounded wait queue for one model, fair between tenants: each tenant has its own FIFO and service goes round
 * robin over tenants, so one tenant's burst waits behind its own requests, not in front of everyone else's.
 */

export interface Waiting {
  tenant_id: string;
  enqueued_at: number;
}

export class FairQueue<W extends Waiting> {
  private readonly byTenant = new Map<string, W[]>();
  /** Tenants in service order; the head is served next. */
  private order: string[] = [];
  private length = 0;

  get size(): number {
    return this.length;
  }

  push(item: W): void {
    const list = this.byTenant.get(item.tenant_id);
    if (list) {
      list.push(item);
    } else {
      this.byTenant.set(item.tenant_id, [item]);
      this.order.push(item.tenant_id);
    }
    this.length++;
  }

  /** Each tenant's oldest waiter, in the order they should be served. */
  heads(): W[] {
    const heads: W[] = [];
    for (const tenant of this.order) {
      const first = this.byTenant.get(tenant)?.[0];
      if (first) heads.push(first);
    }
    return heads;
  }

  /** Removes `item`; when it was its tenant's head, that tenant moves to the back of the service order. */
  remove(item: W): boolean {
    const list = this.byTenant.get(item.tenant_id);
    const index = list?.indexOf(item) ?? -1;
    if (!list || index < 0) return false;
    list.splice(index, 1);
    this.length--;
    if (list.length === 0) this.byTenant.delete(item.tenant_id);
    if (list.length === 0 || index === 0) {
      this.order = this.order.filter((t) => t !== item.tenant_id);
      if (list.length > 0) this.order.push(item.tenant_id);
    }
    return true;
  }

  /** Round-robin's victim when the queue is full: the newest request of the tenant holding the most places. */
  newestOfLargestTenant(): W | undefined {
    let largest: W[] | undefined;
    for (const list of this.byTenant.values()) if (!largest || list.length > largest.length) largest = list;
    return largest?.[largest.length - 1];
  }

  countFor(tenantId: string): number {
    return this.byTenant.get(tenantId)?.length ?? 0;
  }

  oldest(): W | undefined {
    let oldest: W | undefined;
    for (const list of this.byTenant.values()) {
      const first = list[0];
      if (first && (!oldest || first.enqueued_at < oldest.enqueued_at)) oldest = first;
    }
    return oldest;
  }

  *[Symbol.iterator](): IterableIterator<W> {
    for (const list of this.byTenant.values()) yield* list;
  }
}
