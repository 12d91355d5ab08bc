#!/usr/bin/env python3
"""The memory channel's end-to-end suites, unchanged, with their Broker on RabbitMQ (a
rabbitmq-server of this program's own, started once): every filter dialect, retries with
exponential and linear backoff, Retry-After, timeouts, the dead-letter sink with its error
extensions, dropping without one, and replies with their TTL, as on the memory channel. The
Triggers keep RabbitMQ's default, parallelism 1 (FIFO), as eventing-rabbitmq's do."""

import unittest

from cebtest import RabbitMQ, main, rabbitmq_broker_yaml
import test_delivery
import test_filters_e2e
import test_reply

RMQ = None


def setUpModule():
    global RMQ
    RMQ = RabbitMQ()

    def rabbitmq_broker(name="default", namespace="default", delivery=None, annotations=None):
        if annotations:
            raise unittest.SkipTest("a Broker annotation of the memory suite")
        return rabbitmq_broker_yaml(RMQ.port, name=name, namespace=namespace, delivery=delivery)
    test_filters_e2e.broker_yaml = rabbitmq_broker
    test_reply.broker_yaml = rabbitmq_broker
    test_delivery.broker_yaml = rabbitmq_broker


def tearDownModule():
    RMQ.close()


class RabbitMQFilters(test_filters_e2e.FiltersEndToEnd):
    pass


class RabbitMQReplies(test_reply.Replies):
    pass


class RabbitMQDelivery(test_delivery.Delivery):
    pass


if __name__ == "__main__":
    main()
