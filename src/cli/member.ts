// `concord member list|add|remove|promote`: the store's membership, through the etcd v3 Cluster
// API (src/coord/store-cluster.ts); thin on purpose, so it shows what `etcdctl member ...` shows
// and works against Concord members and etcd alike. IDs are hexadecimal, as etcdctl prints them.
//
// Exit codes: 0 done; 2 a bad argument (an ID that is not hexadecimal, a peer URL that is not
// http(s)://host:port); 1 the store refused (an unknown member, a change that would lose quorum,
// promoting a learner that is not caught up) or could not be reached.

import { InvalidArgumentError, type Command } from 'commander';
import { parseMemberId, type StoreMember } from '../coord/store-cluster.ts';
import { addStoreOptions, withStore, type StoreFlagValues } from './store-flags.ts';

function memberIdArgument(value: string): bigint {
  const id = parseMemberId(value);
  if (id === undefined) throw new InvalidArgumentError(`'${value}' is not a member ID: give the hexadecimal ID that concord member list shows`);
  return id;
}

function peerUrlsArgument(value: string): string[] {
  const urls = value.split(',').map((url) => url.trim());
  for (const url of urls) {
    if (!/^https?:\/\/[^/\s:]+(:\d{1,5})$|^https?:\/\/\[[0-9a-fA-F:.]+\](:\d{1,5})$/.test(url)) throw new InvalidArgumentError(`'${url}' is not a peer URL: give http://HOST:PORT (the new member's peer address, port 2380 by default), comma-separated for several`);
  }
  return urls;
}

function formatMembers(members: StoreMember[], leaderId: bigint | undefined): string {
  const lines = members.map((member) => [
    member.idHex, member.name === '' ? '(not started)' : member.name, member.isLearner ? 'learner' : 'voter', member.id === leaderId ? 'leader' : '-',
    member.peerUrls.join(','), member.clientUrls.join(',') || '-',
  ].join('  '));
  return `${['ID  NAME  ROLE  LEADER  PEER URLS  CLIENT URLS', ...lines].join('\n')}\n`;
}

function memberJson(member: StoreMember, leaderId: bigint | undefined): Record<string, unknown> {
  return { id: member.idHex, name: member.name, peerUrls: member.peerUrls, clientUrls: member.clientUrls, isLearner: member.isLearner, isLeader: member.id === leaderId };
}

export function registerMemberCommand(program: Command, setExitCode: (code: number) => void): void {
  const member = program.command('member').description('The store\'s members (the etcd Cluster API): list, add, remove, promote a learner.');
  const exitCodes = '\nExit codes: 0 done; 2 a bad argument; 1 the store refused the change or could not be reached.';

  addStoreOptions(member.command('list')
    .description('Every member with its ID (hex), name, role, whether it leads, and its URLs.')
    .option('--json', 'print {"members": [...]}'))
    .addHelpText('after', exitCodes)
    .action(async (flags: StoreFlagValues & { json?: boolean }) => {
      await withStore('member list', flags, setExitCode, async (store) => {
        const [members, leaderId] = await Promise.all([store.cluster.members(), store.cluster.leaderId().catch(() => undefined)]);
        process.stdout.write(flags.json === true ? `${JSON.stringify({ members: members.map((entry) => memberJson(entry, leaderId)) })}\n` : formatMembers(members, leaderId));
      });
    });

  addStoreOptions(member.command('add')
    .description('Add a member (as a learner with --learner: it catches up without voting, then `member promote`); then start it with --initial-cluster-state existing.')
    .argument('<name>', 'the new member\'s name (its --name)')
    .argument('<peer-urls>', 'its peer URLs, comma-separated: http://HOST:2380', peerUrlsArgument)
    .option('--learner', 'add it as a learner (recommended: it cannot affect quorum until promoted)')
    .option('--json', 'print {"member": {...}, "members": [...]}'))
    .addHelpText('after', exitCodes)
    .action(async (name: string, peerUrls: string[], flags: StoreFlagValues & { learner?: boolean; json?: boolean }) => {
      await withStore('member add', flags, setExitCode, async (store) => {
        const { member: added, members } = await store.cluster.add(peerUrls, flags.learner === true);
        if (flags.json === true) {
          process.stdout.write(`${JSON.stringify({ member: memberJson(added, undefined), members: members.map((entry) => memberJson(entry, undefined)) })}\n`);
          return;
        }
        const initialCluster = members.map((entry) => `${entry.id === added.id ? name : entry.name}=${entry.peerUrls[0] ?? ''}`).join(',');
        process.stdout.write(`added ${name} as ${added.isLearner ? 'a learner' : 'a voter'} with ID ${added.idHex}; start it with:\n`
          + `  concord server --name ${name} --initial-advertise-peer-urls ${peerUrls.join(',')} --initial-cluster ${initialCluster} --initial-cluster-state existing ...\n`
          + (added.isLearner ? `then, once it has caught up: concord member promote ${added.idHex}\n` : ''));
      });
    });

  addStoreOptions(member.command('remove')
    .description('Remove a member from the cluster (it stops taking part; stop its process too).')
    .argument('<id>', 'the member\'s hexadecimal ID (concord member list)', memberIdArgument))
    .addHelpText('after', exitCodes)
    .action(async (id: bigint, flags: StoreFlagValues) => {
      await withStore('member remove', flags, setExitCode, async (store) => {
        const members = await store.cluster.remove(id);
        process.stdout.write(`removed member ${id.toString(16)}; ${members.length} left: ${members.map((entry) => entry.name || entry.idHex).join(', ')}\n`);
      });
    });

  addStoreOptions(member.command('promote')
    .description('Make a learner a voting member (the store refuses while it has not caught up with the leader).')
    .argument('<id>', 'the learner\'s hexadecimal ID (concord member list)', memberIdArgument))
    .addHelpText('after', exitCodes)
    .action(async (id: bigint, flags: StoreFlagValues) => {
      await withStore('member promote', flags, setExitCode, async (store) => {
        await store.cluster.promote(id);
        process.stdout.write(`promoted member ${id.toString(16)} to a voter\n`);
      });
    });
}
