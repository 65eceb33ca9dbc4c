// Symbolic dimension arithmetic, printing and parsing.
#include <gtest/gtest.h>

#include "ir/Dim.h"
#include "ir/Error.h"

using pagedc::Dim;

TEST(Dim, CanonicalFormMakesEqualSizesEqual) {
  Dim a = Dim::symbol("seq") + Dim::symbol("past");
  Dim b = Dim::symbol("past") + Dim::symbol("seq");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.str(), "past + seq");
  EXPECT_EQ((Dim::symbol("batch") * Dim(2) * Dim::symbol("seq")).str(), "2*batch*seq");
  EXPECT_EQ((Dim::symbol("n") - Dim(1)).str(), "n - 1");
  EXPECT_EQ((Dim(3) - Dim::symbol("n")).str(), "-n + 3");
}

TEST(Dim, ParseRoundTrips) {
  for (const char* text : {"0", "7", "seq", "past + seq", "2*batch*seq + 1", "-n + 3", "n*n - 1"}) {
    EXPECT_EQ(Dim::parse(text).str(), text) << text;
  }
  EXPECT_EQ(Dim::parse("(a + 1) * b").str(), "a*b + b");
  EXPECT_EQ(Dim::parse(" seq+past ").str(), "past + seq");
}

TEST(Dim, ExactDivision) {
  Dim batchSeq768 = Dim::symbol("batch") * Dim::symbol("seq") * Dim(768);
  auto q = batchSeq768.divideExactly(Dim(64));
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->str(), "12*batch*seq");
  EXPECT_EQ(batchSeq768.divideExactly(Dim::symbol("batch") * Dim(12))->str(), "64*seq");
  EXPECT_FALSE(Dim(10).divideExactly(Dim(3)).has_value());
  EXPECT_FALSE(Dim::symbol("seq").divideExactly(Dim::symbol("batch")).has_value());
}

TEST(Dim, MalformedTextIsAnError) {
  EXPECT_THROW(Dim::parse("seq +"), pagedc::Error);
  EXPECT_THROW(Dim::parse("(seq"), pagedc::Error);
  EXPECT_THROW(Dim::parse("seq $"), pagedc::Error);
}

TEST(Dim, Substitute) {
  Dim d = Dim::parse("past + seq");
  EXPECT_EQ(d.substitute({{"past", 5}, {"seq", 2}}).constant(), 7);
  EXPECT_FALSE(d.substitute({{"past", 5}}).constant().has_value());
}
