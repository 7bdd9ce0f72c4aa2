// Raft messages on the wire between members: a fixed binary layout, little-endian, decoded strictly
// (an unknown type code, a local-only message type, a truncated field or trailing bytes close the
// connection). A MsgSnap's snapshot data never travels inside the message: it is streamed in chunks
// on a connection of its own (snapshot-stream.ts) and attached by the receiver.
//
//   u8 type | u64 from | u64 to | u53 term | u53 logTerm | u53 index | u53 commit | u8 reject
//   | u53 rejectHint | u32 context length | context | u32 entry count | entries
//   | u8 has snapshot [| u53 index | u53 term | conf state]
//   entry: u53 term | u53 index | u8 type | u32 data length | data
//   conf state: u32 voter count | u64 voters | u32 learner count | u64 learners

import type { ConfState, Entry, EntryType, Message, MessageType, Snapshot } from '../consensus/types.ts';
import { EMPTY_BYTES, isLocalMessage } from '../consensus/types.ts';
import { ByteReader, ByteWriter } from '../storage/binary-codec.ts';
import { ProtocolError, decoding } from './frame.ts';

// Codes are part of the protocol: append new types, never reorder.
const MESSAGE_TYPES: MessageType[] = [
  'MsgHup', 'MsgBeat', 'MsgProp', 'MsgApp', 'MsgAppResp', 'MsgVote', 'MsgVoteResp', 'MsgPreVote',
  'MsgPreVoteResp', 'MsgSnap', 'MsgHeartbeat', 'MsgHeartbeatResp', 'MsgUnreachable', 'MsgSnapStatus',
  'MsgCheckQuorum', 'MsgTransferLeader', 'MsgTimeoutNow', 'MsgReadIndex', 'MsgReadIndexResp',
];
const MESSAGE_TYPE_CODES = new Map<MessageType, number>(MESSAGE_TYPES.map((type, code) => [type, code]));
const ENTRY_TYPES: EntryType[] = ['normal', 'confChange'];

/** More members than any sane cluster has: bounds what a conf state on the wire may claim. */
const MAX_CONF_STATE_MEMBERS = 1024;

export function encodeMessage(message: Message): Uint8Array {
  const writer = new ByteWriter(128 + entriesDataBytes(message.entries));
  writer.u8(MESSAGE_TYPE_CODES.get(message.type)!);
  writer.u64(message.from).u64(message.to);
  writer.u53(message.term).u53(message.logTerm).u53(message.index).u53(message.commit);
  writer.u8(message.reject ? 1 : 0).u53(message.rejectHint);
  writer.u32(message.context.byteLength).raw(message.context);
  writer.u32(message.entries.length);
  for (const entry of message.entries) {
    writer.u53(entry.term).u53(entry.index).u8(ENTRY_TYPES.indexOf(entry.type));
    writer.u32(entry.data.byteLength).raw(entry.data);
  }
  if (message.snapshot) {
    writer.u8(1).u53(message.snapshot.metadata.index).u53(message.snapshot.metadata.term);
    writeConfState(writer, message.snapshot.metadata.confState);
  } else {
    writer.u8(0);
  }
  return writer.finish();
}

/** Decodes a message; a MsgSnap comes back with empty snapshot data for the caller to fill in. */
export function decodeMessage(bytes: Uint8Array): Message {
  return decoding('raft message', () => {
    const reader = new ByteReader(bytes);
    const typeCode = reader.u8('message type');
    const type = MESSAGE_TYPES[typeCode];
    if (type === undefined) throw new ProtocolError(`unknown raft message type ${typeCode}`);
    if (isLocalMessage(type)) throw new ProtocolError(`${type} is local to a member and never crosses the network`);
    const message: Message = {
      type,
      from: reader.u64('from'),
      to: reader.u64('to'),
      term: reader.u53('term'),
      logTerm: reader.u53('log term'),
      index: reader.u53('index'),
      commit: reader.u53('commit'),
      reject: readBoolean(reader, 'reject'),
      rejectHint: reader.u53('reject hint'),
      context: readBytes(reader, 'context'),
      entries: readEntries(reader),
    };
    const hasSnapshot = readBoolean(reader, 'snapshot flag');
    if (hasSnapshot) message.snapshot = readSnapshotMetadata(reader);
    reader.expectEnd('raft message');
    if (type === 'MsgSnap' && !message.snapshot) throw new ProtocolError('MsgSnap without snapshot metadata');
    return message;
  });
}

function readEntries(reader: ByteReader): Entry[] {
  const count = reader.u32('entry count');
  // Each entry takes at least 21 bytes: a count beyond what the payload can hold is a lie.
  if (count * 21 > reader.remainingBytes) throw new ProtocolError(`${count} entries cannot fit in ${reader.remainingBytes} bytes`);
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const term = reader.u53('entry term');
    const index = reader.u53('entry index');
    const typeCode = reader.u8('entry type');
    const type = ENTRY_TYPES[typeCode];
    if (type === undefined) throw new ProtocolError(`unknown entry type ${typeCode}`);
    entries.push({ term, index, type, data: readBytes(reader, 'entry data') });
  }
  return entries;
}

function readSnapshotMetadata(reader: ByteReader): Snapshot {
  const index = reader.u53('snapshot index');
  const term = reader.u53('snapshot term');
  return { metadata: { index, term, confState: readConfState(reader) }, data: EMPTY_BYTES };
}

function writeConfState(writer: ByteWriter, confState: ConfState): void {
  writer.u32(confState.voters.length);
  for (const id of confState.voters) writer.u64(id);
  writer.u32(confState.learners.length);
  for (const id of confState.learners) writer.u64(id);
}

function readConfState(reader: ByteReader): ConfState {
  return { voters: readIds(reader, 'voters'), learners: readIds(reader, 'learners') };
}

function readIds(reader: ByteReader, what: string): bigint[] {
  const count = reader.u32(`${what} count`);
  if (count > MAX_CONF_STATE_MEMBERS) throw new ProtocolError(`${what}: ${count} members, at most ${MAX_CONF_STATE_MEMBERS}`);
  const ids: bigint[] = [];
  for (let i = 0; i < count; i++) ids.push(reader.u64(what));
  return ids;
}

function readBytes(reader: ByteReader, what: string): Uint8Array {
  const length = reader.u32(`${what} length`);
  return length === 0 ? EMPTY_BYTES : reader.raw(length, what);
}

function readBoolean(reader: ByteReader, what: string): boolean {
  const value = reader.u8(what);
  if (value > 1) throw new ProtocolError(`${what} is ${value}, not 0 or 1`);
  return value === 1;
}

function entriesDataBytes(entries: readonly Entry[]): number {
  let total = 0;
  for (const entry of entries) total += entry.data.byteLength + 21;
  return total;
}
