//! Who listens on a port of this machine: an agent `--register` finds on
//! loopback (ngrok's API, cloudflared's metrics) is believed only when it
//! runs as this user. Another local user can start a fake agent on the
//! default ports first, and its answer would choose the URL Danube posts
//! to; the reachability proof alone does not stop it, since such a
//! process can relay the probe it receives back to this listener.
//!
//! Read from Linux's `/proc/net/tcp` and `/proc/net/tcp6`; where they
//! cannot be read, nothing is known and the agent is asked as before.

use std::os::unix::fs::MetadataExt as _;

/// The socket state `/proc/net/tcp` writes for LISTEN.
const LISTEN: &str = "0A";

/// The user of a process listening on `port` that is not this process's
/// user, if there is one.
pub(crate) fn foreign_listener(port: u16) -> Option<u32> {
    let ours = std::fs::metadata("/proc/self").ok()?.uid();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| listeners(&table, port))
        .find(|&uid| uid != ours)
}

/// The users of the sockets listening on `port` in one `/proc/net/tcp*`
/// table (any local address: one bound to every address takes loopback's
/// connections too).
fn listeners(table: &str, port: u16) -> Vec<u32> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            let uid = fields.get(7)?.parse().ok()?;
            let local_port = u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()?;
            (*state == LISTEN && local_port == port).then_some(uid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0FC8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 328065 1 0 100 0 0 10 0
   1: 00000000:4F21 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1284 1 0 100 0 0 10 0
   2: 0100007F:0FC8 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0
";

    #[test]
    fn the_users_listening_on_a_port_are_read_from_the_table() {
        // 0x0FC8 is 4040, 0x4F21 is 20257.
        assert_eq!(listeners(TABLE, 4040), [1001]);
        assert_eq!(listeners(TABLE, 20257), [0]);
        // An established connection on the port is no listener.
        assert_eq!(listeners(TABLE, 4041), Vec::<u32>::new());
        assert!(listeners("garbage\nnot a table at all\n", 4040).is_empty());
    }

    #[test]
    fn a_listener_of_this_process_is_not_foreign() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        assert_eq!(foreign_listener(port), None);
    }
}
