#!/usr/bin/env python3
"""The memory channel's end-to-end suites, unchanged, with their Broker on a DurableChannel (an
MTChannelBasedBroker whose channel-template-spec names it; a state directory of its own for each
daemon, given as systemd's StateDirectory= gives it): every filter dialect, retries with
exponential and linear backoff, Retry-After, timeouts, the dead-letter sink with its error
extensions, dropping without one, and replies with their TTL, as on the memory channel."""

import os
import shutil
import tempfile
import unittest

from cebtest import main
import test_delivery
import test_filters_e2e
import test_reply

STATES = []


def fresh_state():
    """A new state directory for the daemons started from now on ($STATE_DIRECTORY, which
    cebroker takes when --state-dir is not given)."""
    STATES.append(tempfile.mkdtemp(prefix="cebtest-state-"))
    os.environ["STATE_DIRECTORY"] = STATES[-1]


def durable_broker(name="default", namespace="default", delivery=None, annotations=None):
    if annotations:
        raise unittest.SkipTest("a Broker annotation of the memory suite")
    y = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-channel\n  namespace: %s\n"
         "data:\n  channel-template-spec: |\n    apiVersion: messaging.cebroker.dev/v1alpha1\n"
         "    kind: DurableChannel\n---\n"
         "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: %s\n"
         "  namespace: %s\n  annotations:\n"
         "    eventing.knative.dev/broker.class: MTChannelBasedBroker\n"
         "spec:\n  config:\n    apiVersion: v1\n    kind: ConfigMap\n    name: %s-channel\n"
         % (name, namespace, name, namespace, name))
    if delivery:
        y += "  delivery:\n" + "".join("    " + line + "\n" for line in delivery.splitlines())
    return y + "---\n"


def setUpModule():
    test_filters_e2e.broker_yaml = durable_broker
    test_reply.broker_yaml = durable_broker
    test_delivery.broker_yaml = durable_broker


def tearDownModule():
    os.environ.pop("STATE_DIRECTORY", None)
    for d in STATES:
        shutil.rmtree(d, ignore_errors=True)


class DurableFilters(test_filters_e2e.FiltersEndToEnd):
    def setUp(self):
        fresh_state()


class DurableReplies(test_reply.Replies):
    @classmethod
    def setUpClass(cls):
        fresh_state()
        super().setUpClass()


class DurableDelivery(test_delivery.Delivery):
    @classmethod
    def setUpClass(cls):
        fresh_state()
        super().setUpClass()


if __name__ == "__main__":
    main()
