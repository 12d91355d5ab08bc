"""SIGTERM under a steady load: the ingress stops accepting (503), and every request that got a 202
was delivered (or dead-lettered) before the process exited with status 0."""

import threading
import time
import unittest

from cebtest import Daemon, Subscriber, binary_headers, broker_yaml, main, post, trigger_yaml


class Shutdown(unittest.TestCase):
    def test_sigterm_under_load_delivers_every_accepted_event(self):
        sub = Subscriber()
        cfg = broker_yaml() + trigger_yaml("all", sub.at("/all"))
        # A subscriber a little slow, so that work is still queued when the signal comes.
        sub.responses["/all"] = lambda req: (time.sleep(0.002), (202, {}, b""))[1]
        d = Daemon(cfg, args=["--drain-timeout", "60000"], log_level="info")
        accepted, refused, stop = [], [], threading.Event()

        def sender(n):
            i = 0
            while not stop.is_set():
                id = "s%d-%d" % (n, i)
                i += 1
                try:
                    st, _, _ = post(d.url + "/default/default", binary_headers(id=id), b"x", timeout=5)
                except OSError:
                    refused.append(id)
                    continue
                (accepted if st == 202 else refused).append(id)
        threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        rc = d.stop(timeout=90)
        stop.set()
        for t in threads:
            t.join()
        sub.close()
        self.assertEqual(rc, 0)
        self.assertGreater(len(accepted), 50, "the load must have been real")
        got = {r.ce("id") for r in sub.got("/all")}
        lost = [i for i in accepted if i not in got]
        self.assertEqual(lost, [], "%d of %d accepted events were not delivered" % (len(lost), len(accepted)))
        self.assertIn("drained", d.log())


if __name__ == "__main__":
    main()
