// Tests of the contiguous KV reservation allocator and the policies' reservation sizes.
#include <gtest/gtest.h>

#include <random>

#include "ir/Error.h"
#include "runtime/KvPolicy.h"
#include "runtime/KvReservation.h"

namespace pagedc {
namespace {

TEST(KvReservationTest, FirstFitSplitsAndMergesOnRelease) {
  KvReservation r(100);
  EXPECT_EQ(r.reserve(30), 0);
  EXPECT_EQ(r.reserve(30), 30);
  EXPECT_EQ(r.reserve(30), 60);
  EXPECT_EQ(r.freeSlots(), 10);
  EXPECT_EQ(r.largestFreeRange(), 10);
  r.release(30);
  // First fit: the hole at 30 takes a request that fits in it.
  EXPECT_EQ(r.reserve(20), 30);
  r.release(0);
  r.release(30);  // merges with [0, 30) into [0, 60)
  r.checkInvariants();
  EXPECT_EQ(r.largestFreeRange(), 60);
  EXPECT_EQ(r.reserve(60), 0);
  r.checkInvariants();
}

TEST(KvReservationTest, ExternalFragmentationRefusesWhatFreeSlotsWouldHold) {
  KvReservation r(100);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(r.reserve(20));
  r.release(20);
  r.release(60);
  EXPECT_EQ(r.freeSlots(), 40);
  EXPECT_FALSE(r.reserve(40)) << "40 slots are free, but in two ranges of 20";
  EXPECT_EQ(r.freeSlots(), 40);  // a refusal changes nothing
  r.checkInvariants();
}

TEST(KvReservationTest, BadCallsThrowNamingTheOffset) {
  KvReservation r(10);
  EXPECT_THROW(r.reserve(0), Error);
  try {
    r.release(3);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("slot 3"), std::string::npos) << e.what();
  }
  ASSERT_EQ(r.reserve(4), 0);
  r.release(0);
  EXPECT_THROW(r.release(0), Error) << "released twice";
  r.checkInvariants();
  EXPECT_THROW(KvReservation(-1), Error);
  KvReservation empty(0);
  EXPECT_FALSE(empty.reserve(1));
}

TEST(KvReservationTest, RandomReserveReleaseKeepsInvariants) {
  KvReservation r(1000);
  std::mt19937 rng(7);
  std::vector<int64_t> held;
  for (int i = 0; i < 2000; ++i) {
    if (held.empty() || rng() % 2) {
      if (auto o = r.reserve(1 + static_cast<int64_t>(rng() % 120))) held.push_back(*o);
    } else {
      size_t k = rng() % held.size();
      r.release(held[k]);
      held.erase(held.begin() + static_cast<ptrdiff_t>(k));
    }
    r.checkInvariants();
  }
  for (int64_t o : held) r.release(o);
  EXPECT_EQ(r.largestFreeRange(), 1000);
}

TEST(KvPolicyTest, ReservationSizes) {
  EXPECT_EQ(reservationTokens(KvPolicy::OrcaOracle, 100, 50, 2048), 150);
  EXPECT_EQ(reservationTokens(KvPolicy::OrcaOracle, 100, 50, 120), 120) << "capped at max_model_len";
  EXPECT_EQ(reservationTokens(KvPolicy::OrcaPow2, 64, 64, 2048), 128) << "a power of two stays";
  EXPECT_EQ(reservationTokens(KvPolicy::OrcaPow2, 100, 50, 2048), 256);
  EXPECT_EQ(reservationTokens(KvPolicy::OrcaPow2, 100, 28, 2048), 128);
  EXPECT_EQ(reservationTokens(KvPolicy::OrcaPow2, 1500, 100, 2048), 2048);
  EXPECT_EQ(reservationTokens(KvPolicy::OrcaPow2, 1500, 600, 2048), 2048) << "capped at max_model_len";
  EXPECT_EQ(reservationTokens(KvPolicy::OrcaMax, 10, 5, 2048), 2048);
  EXPECT_EQ(reservationTokens(KvPolicy::Static, 10, 5, 2048), 2048);
  EXPECT_EQ(reservationTokens(KvPolicy::Paged, 10, 5, 2048), 0);
  EXPECT_THROW(reservationTokens(KvPolicy::OrcaOracle, 0, 5, 2048), Error);
  EXPECT_THROW(reservationTokens(KvPolicy::OrcaPow2, 10, 0, 2048), Error);
  EXPECT_THROW(reservationTokens(KvPolicy::OrcaMax, 10, 5, 0), Error);
  for (KvPolicy p : allKvPolicies()) EXPECT_EQ(parseKvPolicy(kvPolicyName(p)), p);
  try {
    parseKvPolicy("orca");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'orca'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("orca-oracle"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("static"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pagedc
