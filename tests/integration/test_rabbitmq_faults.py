"""A RabbitMQ Broker under faults, on a rabbitmq-server of the test's own: the daemon SIGKILLed while
8 senders post 20 000 events loses none that it acknowledged (duplicates are counted and printed);
rabbitmq-server killed and restarted mid-stream: every answer while it is down is 503 or 429, no 202
is lost, and delivery resumes by itself."""

import http.client
import os
import signal
import sys
import threading
import time
import unittest

from cebtest import (post, TcpRelay, Daemon, RabbitMQ, Subscriber, binary_headers, main, rabbitmq_broker_yaml,
                     trigger_yaml, wait_for)

PAR = {"rabbitmq.eventing.knative.dev/parallelism": '"100"'}


class Sender(threading.Thread):
    """Posts ids prefix-0..n-1 on a keep-alive connection to whatever port `port()` says, and keeps
    what each answer was. A failed connection (the daemon is gone) is retried until `give_up`."""

    def __init__(self, port, prefix, n, retry_refused=True, pause=0.0):
        super().__init__(daemon=True)
        self.port, self.prefix, self.n = port, prefix, n
        self.retry_refused = retry_refused
        self.pause = pause
        self.accepted = []
        self.answers = []  # (status, id, time)
        self.stop = False

    def run(self):
        conn = None
        i = 0
        while i < self.n and not self.stop:
            id = "%s-%d" % (self.prefix, i)
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port(), timeout=30)
                conn.request("POST", "/default/default", b"x",
                             binary_headers(id=id, type="load"))
                resp = conn.getresponse()
                resp.read()
                self.answers.append((resp.status, id, time.monotonic()))
                if resp.status == 202:
                    self.accepted.append(id)
                    i += 1
                elif self.pause:
                    time.sleep(self.pause)
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
                if not self.retry_refused:
                    i += 1
                time.sleep(0.05)
        if conn is not None:
            conn.close()


def missing_and_duplicates(sub, accepted):
    ids = [r.ce("id") for r in sub.got("/load")]
    seen = set(ids)
    return [a for a in accepted if a not in seen], len(ids) - len(seen)


class RabbitMQFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rmq = RabbitMQ()

    @classmethod
    def tearDownClass(cls):
        cls.rmq.close()

    def config(self, sub, name):
        # classic queues: RabbitMQ 3.10 does not recover a quorum queue declared moments before
        # a SIGKILL of the server, and these are that young
        cfg = rabbitmq_broker_yaml(self.rmq.port, queue_type="classic")
        return cfg + trigger_yaml(name, sub.at("/load"), filter_attrs={"type": "load"},
                                  annotations=PAR)

    def test_sigkill_of_the_daemon_under_load_loses_no_acknowledged_event(self):
        sub = Subscriber()
        cfg = self.config(sub, "killed")
        d = Daemon(cfg, log_level="info")
        cur = {"port": d.port}
        senders = [Sender(lambda: cur["port"], "k%d" % k, 2500) for k in range(8)]
        try:
            for s in senders:
                s.start()
            wait_for(lambda: sum(len(s.accepted) for s in senders) >= 8000, 120,
                     what="8000 accepted before the kill")
            d.stop(signal.SIGKILL, check=False)
            killed_at = sum(len(s.accepted) for s in senders)
            d = Daemon(cfg, log_level="info")
            cur["port"] = d.port
            for s in senders:
                s.join(300)
            accepted = [a for s in senders for a in s.accepted]
            self.assertEqual(len(accepted), 20000)
            wait_for(lambda: not missing_and_duplicates(sub, accepted)[0], 180,
                     what="every accepted event delivered")
            time.sleep(1)
            missing, dups = missing_and_duplicates(sub, accepted)
            sys.stderr.write("SIGKILL after %d accepted: %d accepted in all, %d lost, %d duplicates "
                             "delivered\n" % (killed_at, len(accepted), len(missing), dups))
            self.assertEqual(missing, [])
        finally:
            for s in senders:
                s.stop = True
            d.stop()
            sub.close()

    def test_rabbitmq_restart_mid_stream_answers_503_and_loses_no_202(self):
        sub = Subscriber()
        d = Daemon(self.config(sub, "restarted"), log_level="info")
        senders = [Sender(lambda: d.port, "r%d" % k, 600, pause=0.02) for k in range(4)]
        try:
            for s in senders:
                s.start()
            wait_for(lambda: sum(len(s.accepted) for s in senders) >= 400, 60,
                     what="400 accepted before RabbitMQ dies")
            self.rmq.kill()
            killed = time.monotonic()
            # refused while it is down; the senders keep trying
            wait_for(lambda: sum(1 for s in senders for a in s.answers
                                 if a[2] > killed and a[0] != 202) >= 20, 30,
                     what="answers while RabbitMQ is down")
            st, _, body = d.post("/readyz", {}, b"", "GET")
            self.assertEqual(st, 503, body)
            self.rmq.start()
            restarted = time.monotonic()
            for s in senders:
                s.join(180)
            accepted = [a for s in senders for a in s.accepted]
            self.assertEqual(len(accepted), 2400)
            down = [a for s in senders for a in s.answers if killed < a[2] < restarted]
            self.assertTrue(down)
            self.assertLessEqual(set(a[0] for a in down), {202, 503, 429})
            # a 202 while it was down would be a store nobody confirmed: there is none to lose,
            # and every 202 is delivered
            wait_for(lambda: not missing_and_duplicates(sub, accepted)[0], 120,
                     what="every accepted event delivered after the restart")
            missing, dups = missing_and_duplicates(sub, accepted)
            codes = {}
            for a in down:
                codes[a[0]] = codes.get(a[0], 0) + 1
            sys.stderr.write("RabbitMQ down %.1f s: answers %s; %d accepted in all, %d lost, "
                             "%d duplicates\n" % (restarted - killed, codes, len(accepted),
                                                  len(missing), dups))
            self.assertEqual(missing, [])
            st, _, _ = d.post("/readyz", {}, b"", "GET")
            self.assertEqual(st, 200)
        finally:
            for s in senders:
                s.stop = True
            d.stop()
            sub.close()

    def test_a_stall_a_nack_and_a_connection_closed_by_the_server(self):
        sub = Subscriber()
        cfg = self.config(sub, "odd")
        cfg += ("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: mem\n"
                "  namespace: default\n---\n")
        d = Daemon(cfg, log_level="info")

        def send(id, timeout=10):
            return post(d.url + "/default/default", binary_headers(id=id, type="load"), b"{}",
                        timeout=timeout)
        try:
            self.assertEqual(send("before")[0], 202)
            # 1. RabbitMQ stalled (SIGSTOP): it confirms nothing. The publish is answered 503
            # at its deadline (10 s), never 202, and the ingress serves other Brokers meanwhile.
            os.kill(self.rmq.pid(), signal.SIGSTOP)
            try:
                res = []
                t = threading.Thread(target=lambda: res.append(send("stalled", timeout=30)))
                t.start()
                st, _, body = d.post("/default/mem", binary_headers(id="m", type="load"), b"{}")
                self.assertEqual(st, 202, body)
                t.join(30)
                self.assertEqual(res[0][0], 503, res[0][2])
            finally:
                os.kill(self.rmq.pid(), signal.SIGCONT)
            wait_for(lambda: send("after-stall")[0] == 202, 60, what="202 after the stall")
            # 2. RabbitMQ refuses the message (basic.nack: a full queue that rejects
            # publishes): 503, and 202 again once it takes them
            self.rmq.ctl("set_policy", "--apply-to", "queues", "refuse",
                         r"^t\.default\.default\.odd$",
                         '{"max-length":0,"overflow":"reject-publish"}')
            wait_for(lambda: send("refused")[0] == 503, 30, what="503 for a nacked publish")
            self.rmq.ctl("clear_policy", "refuse")
            wait_for(lambda: send("after-nack")[0] == 202, 30, what="202 once it takes them")
            # 3. the server closes every connection (an operator, a node going down cleanly):
            # publisher and consumer reconnect by themselves
            self.rmq.ctl("close_all_connections", "closed by the test")
            wait_for(lambda: send("after-close")[0] == 202, 30, what="202 after the close")
            wait_for(lambda: {"before", "after-stall", "after-nack", "after-close"} <=
                     set(r.ce("id") for r in sub.got("/load")), 30,
                     what="delivery after each fault")
            self.assertIn("closed by the test", d.log())
        finally:
            try:
                os.kill(self.rmq.pid(), signal.SIGCONT)
            except OSError:
                pass
            d.stop()
            sub.close()

    def test_a_network_cut_is_found_by_heartbeat_and_everything_reconnects_after(self):
        # Not a close: the relay drops every byte both ways and keeps the connections open, so
        # only the heartbeats (10 s) tell that RabbitMQ is gone.
        relay = TcpRelay(self.rmq.port)
        sub = Subscriber()
        d = Daemon(self.config(sub, "cut").replace(
            "127.0.0.1:%d" % self.rmq.port, "127.0.0.1:%d" % relay.port), log_level="info")
        try:
            self.assertEqual(d.post("/default/default", binary_headers(id="c-0", type="load"),
                                    b"{}")[0], 202)
            relay.cut()
            st, _, body = post(d.url + "/default/default", binary_headers(id="c-1", type="load"),
                               b"{}", timeout=30)
            self.assertEqual(st, 503, body)  # no confirm: the deadline's answer, never a 202
            wait_for(lambda: d.post("/readyz", {}, b"", "GET")[0] == 503, 60,
                     what="/readyz 503 once the heartbeats are missed")
            print("\nnetwork cut: not ready %.1f s after the cut" % (
                time.monotonic() - relay.cut_at))
            relay.mend()
            wait_for(lambda: d.post("/readyz", {}, b"", "GET")[0] == 200, 60,
                     what="/readyz 200 after the cut mended")
            wait_for(lambda: d.post("/default/default", binary_headers(id="c-2", type="load"),
                                    b"{}")[0] == 202, 30, what="202 after the cut")
            wait_for(lambda: {"c-0", "c-2"} <= set(r.ce("id") for r in sub.got("/load")), 30,
                     what="delivery after the cut")
        finally:
            d.stop()
            sub.close()
            relay.close()


if __name__ == "__main__":
    main()
