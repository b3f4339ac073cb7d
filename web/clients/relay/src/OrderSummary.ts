// A refetchable Order fragment with its customer and items.
import { graphql } from "relay-runtime";

export const orderSummaryFragment = graphql`
  fragment OrderSummary_order on Order
  @refetchable(queryName: "OrderSummaryRefetchQuery") {
    id
    status
    totalCents
    currency
    customer {
      id
      ...CustomerProfile_customer
    }
    items {
      id
      quantity
      product {
        id
        name
      }
    }
  }
`;
