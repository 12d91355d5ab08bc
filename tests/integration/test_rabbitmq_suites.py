#!/usr/bin/env python3
"""The memory channel's end-to-end suites, unchanged, with their Broker on RabbitMQ (a
rabbitmq-server of this program's own, started once): every filter dialect, retries with
exponential and linear backoff, Retry-After, timeouts, the dead-letter sink with its error
extensions, dropping without one, and replies with their TTL, as on the memory channel. The
Triggers keep RabbitMQ's default, parallelism 1 (FIFO), as eventing-rabbitmq's do."""

from cebtest import RabbitMQ, main, memory_suites_on, rabbitmq_broker_yaml
import test_delivery
import test_filters_e2e
import test_reply

RMQ = None


def setUpModule():
    global RMQ
    RMQ = RabbitMQ()

    memory_suites_on(lambda name="default", namespace="default", delivery=None:
                     rabbitmq_broker_yaml(RMQ.port, name=name, namespace=namespace,
                                          delivery=delivery))


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
