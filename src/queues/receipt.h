#pragma once
// Receipts: what a receive hands out to ack or extend a message by. Opaque to clients (22
// base64url characters): the message id and the nonce of that receive, which the message's row
// keeps until it is received again — so a receipt is single-use and goes stale on the next
// receive. The nonce's low bit says whether the queue is FIFO (an ack then frees the group).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace drover::queues {

// A fresh random nonce, never 0, with the FIFO bit set as asked.
int64_t NewNonce(bool fifo);
inline bool IsFifoNonce(int64_t nonce) { return (nonce & 1) != 0; }

std::string EncodeReceipt(int64_t id, int64_t nonce);
// (id, nonce), or nullopt for anything EncodeReceipt did not make.
std::optional<std::pair<int64_t, int64_t>> DecodeReceipt(std::string_view receipt);

}  // namespace drover::queues
