// LifeToken answers one question for code that runs after a call it made out may have
// destroyed its owner (a callback that ran the owner's destructor, or a completion delivered
// after a Close()): is the owner still there? The owner holds the token and revokes it first
// thing in its destructor; code that must look again holds a Watch.
#pragma once

#include <memory>
#include <utility>

namespace syncd {

class LifeToken {
 public:
  class Watch {
   public:
    bool alive() const {
      auto flag = flag_.lock();
      return flag && *flag;
    }

   private:
    friend class LifeToken;
    explicit Watch(std::weak_ptr<bool> flag) : flag_(std::move(flag)) {}
    std::weak_ptr<bool> flag_;
  };

  LifeToken() = default;
  LifeToken(const LifeToken&) = delete;
  LifeToken& operator=(const LifeToken&) = delete;

  Watch watch() const { return Watch(flag_); }
  // The owner is going: every Watch says so from now on, even before the token itself goes.
  void Revoke() { *flag_ = false; }
  // `f`, made to do nothing once the owner is gone.
  template <typename F>
  auto Guard(F f) const {
    return [watch = watch(), f = std::move(f)](auto&&... args) mutable {
      if (watch.alive()) f(std::forward<decltype(args)>(args)...);
    };
  }

 private:
  std::shared_ptr<bool> flag_ = std::make_shared<bool>(true);
};

}  // namespace syncd
