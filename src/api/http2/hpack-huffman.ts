// HPACK's Huffman code (RFC 7541 §5.2, Appendix B) and a table-driven decoder for it.
//
// The code is canonical: codes of one length are consecutive in symbol order, and each length's
// first code follows the previous length's last. So the 257 code lengths are the whole code, and the
// codes are built from them here rather than copied as 257 hex numbers.
//
// The decoder reads four bits at a time through a state machine built at load (as nghttp2 does):
// a state is a node of the code tree (a prefix of some code), and the table says, for each state and
// nibble, the state it leads to and the symbol it completes, if any. The shortest code is 5 bits, so
// a nibble completes at most one symbol. That is two table reads per input octet instead of eight
// tree steps.

/** Code lengths in bits, symbols 0..255 and then 256, the end-of-string symbol. */
const CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

export const EOS_SYMBOL = 256;
const SYMBOL_COUNT = 257;

/** Each symbol's code length in bits (index = symbol, 256 = EOS). */
export const HUFFMAN_LENGTHS: Uint8Array = Uint8Array.from(CODE_LENGTHS);

/** Each symbol's code, right-aligned in its length (index = symbol, 256 = EOS). */
export const HUFFMAN_CODES: Uint32Array = canonicalCodes(HUFFMAN_LENGTHS);

function canonicalCodes(lengths: Uint8Array): Uint32Array {
  if (lengths.length !== SYMBOL_COUNT) throw new Error(`HPACK Huffman: ${lengths.length} code lengths, expected ${SYMBOL_COUNT}`);
  const symbols = Array.from(lengths.keys()).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const codes = new Uint32Array(SYMBOL_COUNT);
  let code = -1;
  let previousLength = 0;
  for (const symbol of symbols) {
    const length = lengths[symbol]!;
    code = (code + 1) << (length - previousLength); // the longest code, 30 bits, fits an int32
    codes[symbol] = code;
    previousLength = length;
  }
  return codes;
}

// The code tree: internal nodes are numbered from 0 (the root); children[node * 2 + bit] is an
// internal node, or LEAF + symbol.
const LEAF = 0x1000;
const NODE_COUNT = SYMBOL_COUNT - 1; // a full binary tree with 257 leaves has 256 internal nodes

function buildTree(): Int32Array {
  const children = new Int32Array(NODE_COUNT * 2).fill(-1);
  let nodes = 1;
  for (let symbol = 0; symbol < SYMBOL_COUNT; symbol++) {
    const code = HUFFMAN_CODES[symbol]!;
    let node = 0;
    for (let bit = HUFFMAN_LENGTHS[symbol]! - 1; bit > 0; bit--) {
      const slot = node * 2 + ((code >>> bit) & 1);
      if (children[slot] === -1) children[slot] = nodes++;
      node = children[slot]!;
    }
    children[node * 2 + (code & 1)] = LEAF + symbol;
  }
  if (nodes !== NODE_COUNT) throw new Error(`HPACK Huffman: the code tree has ${nodes} internal nodes, expected ${NODE_COUNT}`);
  return children;
}

// A transition: the next state in the low 8 bits, the completed symbol in the next 8, and flags.
const EMITS = 1 << 16;
const HITS_EOS = 1 << 17;
const NEXT_STATE_MASK = 0xff;

/** Why a Huffman string did not decode: huffmanDecode returns one of these instead of a length. */
export const HuffmanFailure = {
  /** RFC 7541 §5.2: a string that contains the EOS symbol is an error. */
  eos: -1,
  /** The string ends in the middle of a code that is more than 7 bits in. */
  longPadding: -2,
  /** The string ends in the middle of a code that is not the EOS code (padding must be all ones). */
  badPadding: -3,
} as const;

const transitions = new Uint32Array(NODE_COUNT * 16);
/** For each state, 0 when the string may end there, else the HuffmanFailure to report. */
const endings = new Int8Array(NODE_COUNT);

function buildDecoder(): void {
  const children = buildTree();
  // The depth of each node, and whether the path to it is all ones (a prefix of the EOS code).
  const depth = new Uint8Array(NODE_COUNT);
  const allOnes = new Uint8Array(NODE_COUNT);
  allOnes[0] = 1;
  for (let node = 0; node < NODE_COUNT; node++) {
    for (let bit = 0; bit < 2; bit++) {
      const child = children[node * 2 + bit]!;
      if (child >= LEAF) continue;
      // Children are numbered after their parent, so the parent is already done.
      depth[child] = depth[node]! + 1;
      allOnes[child] = allOnes[node]! & bit;
    }
  }
  for (let state = 0; state < NODE_COUNT; state++) {
    if (!allOnes[state]) endings[state] = HuffmanFailure.badPadding;
    else if (depth[state]! > 7) endings[state] = HuffmanFailure.longPadding;
    for (let nibble = 0; nibble < 16; nibble++) transitions[state * 16 + nibble] = transition(children, state, nibble);
  }
}

function transition(children: Int32Array, state: number, nibble: number): number {
  let node = state;
  let emitted = 0;
  for (let bit = 3; bit >= 0; bit--) {
    const child = children[node * 2 + ((nibble >> bit) & 1)]!;
    if (child < LEAF) {
      node = child;
      continue;
    }
    const symbol = child - LEAF;
    if (symbol === EOS_SYMBOL) return HITS_EOS;
    emitted = EMITS | (symbol << 8);
    node = 0;
  }
  return emitted | node;
}

buildDecoder();

/** The most octets that `length` octets of Huffman code can decode to (the shortest code is 5 bits). */
export function huffmanDecodedBound(length: number): number {
  return Math.floor((length * 8) / 5);
}

/**
 * Decodes the Huffman string src[start, end) into `out` from index 0, which must hold at least
 * huffmanDecodedBound(end - start) octets. Returns the number of octets decoded, or a (negative)
 * HuffmanFailure.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, out: Uint8Array): number {
  let state = 0;
  let length = 0;
  for (let at = start; at < end; at++) {
    const octet = src[at]!;
    let step = transitions[(state << 4) | (octet >> 4)]!;
    if (step & HITS_EOS) return HuffmanFailure.eos;
    if (step & EMITS) out[length++] = (step >> 8) & 0xff;
    state = step & NEXT_STATE_MASK;
    step = transitions[(state << 4) | (octet & 0xf)]!;
    if (step & HITS_EOS) return HuffmanFailure.eos;
    if (step & EMITS) out[length++] = (step >> 8) & 0xff;
    state = step & NEXT_STATE_MASK;
  }
  return endings[state] || length;
}

/** Words for a HuffmanFailure, for the error message. */
export function describeHuffmanFailure(failure: number): string {
  switch (failure) {
    case HuffmanFailure.eos: return 'a Huffman string contains the EOS symbol';
    case HuffmanFailure.longPadding: return 'a Huffman string has more than 7 bits of padding';
    case HuffmanFailure.badPadding: return 'a Huffman string\'s padding is not a prefix of the EOS code';
    default: return `unknown Huffman failure ${failure}`;
  }
}
