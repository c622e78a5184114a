"""Contingent groups in the book: a bracket's or an OTO's exits held until the entry fills
and then sized by its fills, an OCO's exits sharing one quantity (the rules and the
arithmetic are engine.contingent's).

An exit's fill resizes its sibling at once, inside the tick that filled it (RESIZED, or
CANCELED when nothing is left), so two exits never both fill the same units; exits that an
entry's fill activates (ACTIVATED) are matched, as arrivals, when the call that filled the
entry ends.  ``MatchingEngine`` (engine.matching) is the book with its matching on top.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

from quantdesk.trading.engine.book import Book, GroupState
from quantdesk.trading.engine.contingent import OrderGroup, exit_sizes
from quantdesk.trading.engine.types import ZERO, EventKind, Order, OrderEvent


class GroupedBook(Book):
    def cancel_group(
        self, order_id: str, now: dt.datetime, reason: str = "canceled with its group"
    ) -> list[OrderEvent]:
        """Cancel an order and every other open order of its group (canceling any order of a
        bracket, OTO or OCO cancels the rest, the parent's cancel included).  Returns a
        CANCELED event for each of the others; the order itself is the caller's."""
        gid = self._group_of.pop(order_id, None)
        self.cancel(order_id)
        if gid is None:
            return []
        group = self._groups.pop(gid)
        events: list[OrderEvent] = []
        for member in (group.entry_id, *group.exit_ids):
            if member is None or member == order_id:
                continue
            self._group_of.pop(member, None)
            canceled = self.cancel(member)
            if canceled is not None:
                events.append(
                    OrderEvent(member, EventKind.CANCELED, now, canceled.version, reason=reason)
                )
        return events

    def drop_group(self, order_id: str) -> list[Order]:
        """Take a whole group out of the engine without a word (no events): to reload it
        from storage with ``restore_group`` when a stored member turned out to differ from
        the engine's (a stale fill).  Returns the members that were open."""
        gid = self._group_of.get(order_id)
        if gid is None:
            dropped = self.cancel(order_id)
            return [] if dropped is None else [dropped]
        group = self._groups.pop(gid)
        removed: list[Order] = []
        for member in (group.entry_id, *group.exit_ids):
            if member is not None:
                self._group_of.pop(member, None)
                self._to_arrive = [i for i in self._to_arrive if i != member]
                open_order = self.cancel(member)
                if open_order is not None:
                    removed.append(open_order)
        return removed

    def add_group(self, group: OrderGroup, now: dt.datetime) -> list[OrderEvent]:
        """Place a bracket, OTO or OCO: the entry is matched at once, the exits are held
        until it fills (an OCO's exits are matched at once)."""
        self._register(group)
        events: list[OrderEvent] = []
        entry = group.entry
        if entry is not None and not group.entry_ended:
            events += self._enter(entry, now)
        self._regroup(group.id, now, events, arrive=True)
        self._drain(now, events)
        return events

    def restore_group(self, group: OrderGroup, *, matched: bool = True) -> None:
        """Put back a group from storage (each member as stored: quantities, fills,
        triggers) without matching it now; exits are sized and placed by its fills."""
        self._register(group)
        entry = group.entry
        if entry is not None and not group.entry_ended:
            self._place(entry, matched)
        self._regroup(group.id, None, [], arrive=False, matched=matched)

    def _register(self, group: OrderGroup) -> None:
        for member in group.members:
            if member.id in self._group_of or self.get(member.id) is not None:
                raise ValueError(f"order {member.id} is already working")
        exits = group.exits
        if group.entry is not None:
            capacity = group.entry.quantity
        else:  # an OCO: its quantity, as stored (each exit's quantity is it less the other's)
            capacity = exits[0].quantity + sum((o.filled_quantity for o in exits[1:]), ZERO)
        state = GroupState(
            group.order_class,
            None if group.entry is None else group.entry.id,
            tuple(o.id for o in exits),
            capacity,
            group.entry_ended,
        )
        gid = group.id
        self._groups[gid] = state
        for member in group.members:
            self._group_of[member.id] = gid
        if group.entry is not None and group.entry_ended:
            state.ended[group.entry.id] = group.entry
        for exit_order in exits:
            if exit_order.open_quantity > 0:
                self._waiting[exit_order.id] = exit_order
            else:
                state.ended[exit_order.id] = exit_order

    def _reopen(self, gid: str, order: Order, matched: bool) -> None:
        """A member taken out (``cancel``) comes back: an entry rests, an exit waits to be
        sized by its group."""
        group = self._groups[gid]
        group.ended.pop(order.id, None)
        if order.id == group.entry_id:
            if order.open_quantity > 0:
                group.entry_ended = False
                self._place(order, matched)
            else:
                group.ended[order.id] = order
        else:
            self._waiting[order.id] = order

    def _member(self, group: GroupState, order_id: str) -> Order:
        order = self._orders.get(order_id)
        if order is None:
            order = self._waiting.get(order_id)
        if order is None:
            order = group.ended[order_id]
        return order

    def _regroup(
        self,
        gid: str,
        now: dt.datetime | None,
        events: list[OrderEvent],
        *,
        arrive: bool,
        matched: bool = True,
    ) -> None:
        """Size every open exit of a group by its fills (engine.contingent's rule) and place
        it: in the book when some of it is active (an arrival, matched when the call ends,
        or with ``arrive=False`` rested as restored), waiting otherwise; an exit left with
        nothing open is canceled.  A group with nothing open is forgotten."""
        group = self._groups.get(gid)
        if group is None:
            return
        if group.entry_id is not None:
            entry = self._member(group, group.entry_id)
            active_capacity: Decimal | None = entry.filled_quantity
            capacity = entry.filled_quantity if group.entry_ended else entry.quantity
        else:
            active_capacity, capacity = None, group.entry_quantity
        filled = tuple(self._member(group, i).filled_quantity for i in group.exit_ids)
        ts = now if now is not None else dt.datetime.min.replace(tzinfo=dt.UTC)
        for index, order_id in enumerate(group.exit_ids):
            if order_id in group.ended:
                continue
            current = self._member(group, order_id)
            quantity, active = exit_sizes(capacity, active_capacity, filled, index)
            if quantity <= current.filled_quantity:
                self.cancel(order_id)
                group.ended[order_id] = current
                why = (
                    "one-cancels-other: its sibling filled"
                    if sum(filled) > current.filled_quantity
                    else "its entry ended: nothing left to close"
                )
                events.append(
                    OrderEvent(order_id, EventKind.CANCELED, ts, current.version, reason=why)
                )
                continue
            sized = current
            if quantity != current.quantity or active != current.active:
                sized = replace(current, quantity=quantity, active=active)
                if quantity != current.quantity:
                    events.append(
                        OrderEvent(
                            order_id, EventKind.RESIZED, ts, current.version, quantity=quantity
                        )
                    )
                if active is not None and (current.active is None or active > current.active):
                    events.append(
                        OrderEvent(
                            order_id,
                            EventKind.ACTIVATED,
                            ts,
                            current.version,
                            quantity=min(quantity, active),
                        )
                    )
            if order_id in self._orders:
                if sized.remaining > 0:
                    self._orders[order_id] = sized  # same prices: same place in its queue
                else:
                    self._unrest(current)
                    self._waiting[order_id] = sized
            else:
                self._waiting[order_id] = sized
                if sized.remaining > 0:
                    if arrive:
                        if order_id not in self._to_arrive:
                            self._to_arrive.append(order_id)
                    else:
                        del self._waiting[order_id]
                        self._place(sized, matched)
        entry_open = group.entry_id is not None and group.entry_id not in group.ended
        if not entry_open and all(i in group.ended for i in group.exit_ids):
            del self._groups[gid]
            for member in (group.entry_id, *group.exit_ids):
                if member is not None:
                    self._group_of.pop(member, None)

    def _drain(self, now: dt.datetime, events: list[OrderEvent]) -> None:
        """Match the exits that fills activated, as arrivals on the current quote."""
        while self._to_arrive:
            order_id = self._to_arrive.pop(0)
            order = self._waiting.get(order_id)
            if order is None or order.remaining <= 0:
                continue
            del self._waiting[order_id]
            events += self._enter(order, now)

    def _after_group_fill(self, gid: str, filled: Order, now: dt.datetime) -> None:
        group = self._groups[gid]
        if filled.remaining <= 0:
            if filled.open_quantity > 0:
                self._waiting[filled.id] = filled  # an exit waiting for more of its entry
            else:
                group.ended[filled.id] = filled
                if filled.id == group.entry_id:
                    group.entry_ended = True
        self._regroup(gid, now, self._side, arrive=True)
